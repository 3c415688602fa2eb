package dev.relat.engine;

import dev.relat.model.Adapter;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * One question's throw-away LoRA adapter: for every targeted projection W [out, in] of every layer,
 * y = x W^T + s (x A^T) B^T with A [r, in], B [out, r], s = alpha / r. A is drawn like PEFT's
 * default (Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))) from a seeded host
 * generator, so the same seed gives the same adapter on every device; B starts at zero, so the
 * adapted model starts equal to the base model. A, B and their gradients are fp32 whatever the
 * model dtype: updates of size lr = 2e-5 would vanish in bf16. The base weights are never touched.
 */
final class Lora implements Adapter, AutoCloseable {
    private final int layers;
    private final double scale;
    private final List<Map<Projection, Tensor[]>> weights = new ArrayList<>(); // {A, B, dA, dB}
    private final List<Tensor> params = new ArrayList<>();
    private final List<Tensor> grads = new ArrayList<>();

    public Lora(QwenConfig config, Iterable<Projection> targets, int rank, double alpha, long seed, Device device) {
        if (rank < 1) throw new IllegalArgumentException("LoRA rank must be >= 1, got " + rank);
        this.layers = config.numHiddenLayers();
        this.scale = alpha / rank;
        SplittableRandom random = new SplittableRandom(seed);
        for (int layer = 0; layer < layers; layer++) {
            Map<Projection, Tensor[]> byProjection = new EnumMap<>(Projection.class);
            for (Projection p : targets) {
                long[] io = shape(config, p);
                long out = io[0], in = io[1];
                float[] a = new float[Math.toIntExact(rank * in)];
                double bound = 1.0 / Math.sqrt(in);
                for (int i = 0; i < a.length; i++) a[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
                Tensor aT = keep(Tensor.create(a).view(rank, in).to(device, ScalarType.Float));
                Tensor bT = keep(zeros(device, out, rank));
                Tensor dA = keep(zeros(device, rank, in));
                Tensor dB = keep(zeros(device, out, rank));
                byProjection.put(p, new Tensor[] {aT, bT, dA, dB});
                params.add(aT);
                params.add(bT);
                grads.add(dA);
                grads.add(dB);
            }
            weights.add(byProjection);
        }
    }

    /** [out, in] of a projection. */
    static long[] shape(QwenConfig c, Projection p) {
        long d = c.hiddenSize();
        long nq = (long) c.numAttentionHeads() * c.headDim();
        long nkv = (long) c.numKeyValueHeads() * c.headDim();
        long inter = c.intermediateSize();
        return switch (p) {
            case Q -> new long[] {nq, d};
            case K, V -> new long[] {nkv, d};
            case O -> new long[] {d, nq};
            case GATE, UP -> new long[] {inter, d};
            case DOWN -> new long[] {d, inter};
        };
    }

    public double scale() {
        return scale;
    }

    /** Every A and B, in a fixed order (layer, projection, A then B): the optimizer's parameters. */
    public List<Tensor> parameters() {
        return params;
    }

    /** The gradients, in the order of {@link #parameters}. */
    public List<Tensor> gradients() {
        return grads;
    }

    public Tensor a(int layer, Projection p) {
        return weights.get(layer).get(p)[0];
    }

    public Tensor b(int layer, Projection p) {
        return weights.get(layer).get(p)[1];
    }

    public Tensor gradA(int layer, Projection p) {
        return weights.get(layer).get(p)[2];
    }

    public Tensor gradB(int layer, Projection p) {
        return weights.get(layer).get(p)[3];
    }

    public void zeroGradients() {
        for (Tensor g : grads) g.zero_();
    }

    @Override
    public boolean targets(int layer, Projection projection) {
        return weights.get(layer).containsKey(projection);
    }

    /** y += s (x A^T) B^T, computed in fp32 and rounded to y's dtype once. */
    @Override
    public void addTo(int layer, Projection p, Tensor x, Tensor y) {
        Tensor[] w = weights.get(layer).get(p);
        Tensor xa = torch.matmul(x.to(ScalarType.Float), w[0].t());
        Tensor delta = torch.matmul(xa, w[1].t()).mul(new Scalar(scale));
        y.add_(delta.to(y.scalar_type()));
    }

    /**
     * The backward of one adapted projection: given its input x [T, in] and the gradient of its
     * output dy [T, out], accumulates dA += s (dy B)^T x and dB += s dy^T (x A^T), and adds the
     * adapter's share of the input gradient, s (dy B) A, into dx [T, in].
     */
    public void backward(int layer, Projection p, Tensor x, Tensor dy, Tensor dx) {
        Tensor[] w = weights.get(layer).get(p);
        if (w == null) return;
        Tensor x32 = x.to(ScalarType.Float);
        Tensor dy32 = dy.to(ScalarType.Float);
        Tensor xa = torch.matmul(x32, w[0].t());
        Tensor dyB = torch.matmul(dy32, w[1]);
        Scalar one = new Scalar(1.0);
        Scalar s = new Scalar(scale);
        w[3].addmm_(dy32.t(), xa, one, s);
        w[2].addmm_(dyB.t(), x32, one, s);
        dx.add_(torch.matmul(dyB, w[0]).mul(s).to(dx.scalar_type()));
    }

    /** Frees A, B and the gradients now. */
    @Override
    public void close() {
        for (Tensor t : params) t.releaseReference();
        for (Tensor t : grads) t.releaseReference();
        params.clear();
        grads.clear();
        weights.clear();
    }

    private static Tensor zeros(Device device, long... shape) {
        return torch.zeros(shape, new TensorOptions(device)
                .dtype(new ScalarTypeOptional(ScalarType.Float)));
    }

    private static Tensor keep(Tensor t) {
        t.retainReference();
        return t;
    }
}
