package dev.relat.engine;

import dev.relat.model.Adapter;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.Sequences;
import dev.relat.ops.SegmentedLora;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The throw-away LoRA adapters of one question or of a batch of questions, one adapter per
 * question: for every targeted projection W [out, in] of every layer, question m's rows get
 * y = x W^T + s (x A_m^T) B_m^T with A_m [r, in], B_m [out, r], s = alpha / r. A is drawn like
 * PEFT's default (Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))) from a host
 * generator seeded with the question's seed, so the same seed gives the same adapter on every
 * device and in every batch; B starts at zero, so the adapted model starts equal to the base model.
 * A, B and their gradients are fp32 whatever the model dtype: updates of size lr = 2e-5 would
 * vanish in bf16. The base weights are never touched.
 *
 * <p>The members' weights are stacked, A [members, r, in] and B [members, out, r] per projection,
 * so one optimizer call updates every question's adapter; a batched forward gives member m the
 * rows of sequence m ({@link Sequences}).
 */
final class Lora implements Adapter, AutoCloseable {
    private final int layers;
    private final int members;
    private final int rank;
    private final double scale;
    private final List<Map<Projection, Tensor[]>> weights = new ArrayList<>(); // {A, B, dA, dB}, stacked
    private final List<Tensor> params = new ArrayList<>();
    private final List<Tensor> grads = new ArrayList<>();

    /** One question's adapter. */
    public Lora(QwenConfig config, Iterable<Projection> targets, int rank, double alpha, long seed, Device device) {
        this(config, targets, rank, alpha, new long[] {seed}, device);
    }

    /** One adapter per seed, member m drawn from seeds[m] exactly as a lone adapter with that seed. */
    Lora(QwenConfig config, Iterable<Projection> targets, int rank, double alpha, long[] seeds, Device device) {
        if (rank < 1) throw new IllegalArgumentException("LoRA rank must be >= 1, got " + rank);
        if (seeds.length < 1) throw new IllegalArgumentException("a LoRA needs at least one member");
        this.layers = config.numHiddenLayers();
        this.members = seeds.length;
        this.rank = rank;
        this.scale = alpha / rank;
        SplittableRandom[] random = new SplittableRandom[members];
        for (int m = 0; m < members; m++) random[m] = new SplittableRandom(seeds[m]);
        for (int layer = 0; layer < layers; layer++) {
            Map<Projection, Tensor[]> byProjection = new EnumMap<>(Projection.class);
            for (Projection p : targets) {
                long[] io = shape(config, p);
                long out = io[0], in = io[1];
                int size = Math.toIntExact(rank * in);
                float[] a = new float[Math.multiplyExact(members, size)];
                double bound = 1.0 / Math.sqrt(in);
                for (int m = 0; m < members; m++) {
                    for (int i = 0; i < size; i++) a[m * size + i] = (float) ((random[m].nextDouble() * 2 - 1) * bound);
                }
                Tensor aT = keep(Tensor.create(a).view(members, rank, in).to(device, ScalarType.Float));
                Tensor bT = keep(zeros(device, members, out, rank));
                Tensor dA = keep(zeros(device, members, rank, in));
                Tensor dB = keep(zeros(device, members, out, rank));
                put(byProjection, p, new Tensor[] {aT, bT, dA, dB});
            }
            weights.add(byProjection);
        }
    }

    /** Copies of some members' A and B (no gradients): the adapters of the questions still decoding. */
    private Lora(Lora source, long[] kept) {
        this.layers = source.layers;
        this.members = kept.length;
        this.rank = source.rank;
        this.scale = source.scale;
        try (PointerScope scope = new PointerScope()) {
            Tensor index = Tensor.create(kept);
            for (Map<Projection, Tensor[]> byProjection : source.weights) {
                Map<Projection, Tensor[]> copy = new EnumMap<>(Projection.class);
                for (Map.Entry<Projection, Tensor[]> e : byProjection.entrySet()) {
                    Tensor[] w = e.getValue();
                    Tensor i = index.to(w[0].device(), ScalarType.Long);
                    put(copy, e.getKey(), new Tensor[] {keep(w[0].index_select(0, i)), keep(w[1].index_select(0, i)),
                        null, null});
                }
                weights.add(copy);
            }
        }
    }

    private void put(Map<Projection, Tensor[]> byProjection, Projection p, Tensor[] w) {
        byProjection.put(p, w);
        params.add(w[0]);
        params.add(w[1]);
        if (w[2] != null) {
            grads.add(w[2]);
            grads.add(w[3]);
        }
    }

    /**
     * The adapters of some members, copied, for decoding after training (no gradients): the
     * forward then gives the i-th sequence the adapter of member kept[i].
     */
    Lora select(long[] kept) {
        for (long m : kept) {
            if (m < 0 || m >= members) throw new IllegalArgumentException("no LoRA member " + m + " of " + members);
        }
        return new Lora(this, kept);
    }

    /** The adapters stacked here: one per question of the batch. */
    int members() {
        return members;
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

    /** A [r, in] of a lone adapter (a view: writing it writes the adapter). */
    public Tensor a(int layer, Projection p) {
        return stacked(layer, p, 0).select(0, lone());
    }

    /** B [out, r] of a lone adapter (a view). */
    public Tensor b(int layer, Projection p) {
        return stacked(layer, p, 1).select(0, lone());
    }

    /** dA [r, in] of a lone adapter (a view). */
    public Tensor gradA(int layer, Projection p) {
        return stacked(layer, p, 2).select(0, lone());
    }

    /** dB [out, r] of a lone adapter (a view). */
    public Tensor gradB(int layer, Projection p) {
        return stacked(layer, p, 3).select(0, lone());
    }

    /** Member m's A [r, in], B [out, r], dA or dB (which: 0 to 3), a view. */
    Tensor member(int m, int layer, Projection p, int which) {
        return stacked(layer, p, which).select(0, m);
    }

    private Tensor stacked(int layer, Projection p, int which) {
        Tensor t = weights.get(layer).get(p)[which];
        if (t == null) throw new IllegalStateException("this LoRA holds no gradients (a decoding copy)");
        return t;
    }

    private int lone() {
        if (members != 1) throw new IllegalStateException("this LoRA has " + members + " members; name one");
        return 0;
    }

    public void zeroGradients() {
        for (Tensor g : grads) g.zero_();
    }

    @Override
    public boolean targets(int layer, Projection projection) {
        return weights.get(layer).containsKey(projection);
    }

    /**
     * y += s (x A_m^T) B_m^T for the rows of each sequence m, computed in fp32 and rounded to y's
     * dtype once: one call of relat's segmented LoRA kernel for every member ({@link SegmentedLora}),
     * or, past its limits (rank above {@link SegmentedLora#MAX_RANK}, more than
     * {@link SegmentedLora#MAX_SEGMENTS} members), libtorch matmuls member by member.
     */
    @Override
    public void addTo(int layer, Projection p, Tensor x, Tensor y, Sequences sequences) {
        requireMembers(sequences);
        Tensor[] w = weights.get(layer).get(p);
        if (!kernelFits()) {
            addPerMember(w, x, y, sequences);
            return;
        }
        // y is often a column slice of a fused q|k|v or gate|up output: the kernel takes whole rows
        Tensor out = y.is_contiguous() ? y : y.contiguous();
        SegmentedLora.forward(x.contiguous(), w[0], w[1], sequences.offsetsTensor(), scale, out);
        if (!y.is_contiguous()) y.copy_(out);
    }

    /**
     * The backward of one adapted projection: given its input x [T, in] and the gradient of its
     * output dy [T, out], accumulates, for the rows of each sequence m, dA_m += s (dy B_m)^T x and
     * dB_m += s dy^T (x A_m^T), and adds the adapter's share of the input gradient, s (dy B_m) A_m,
     * into dx [T, in] (one call of the segmented kernel's backward).
     */
    public void backward(int layer, Projection p, Tensor x, Tensor dy, Tensor dx, Sequences sequences) {
        Tensor[] w = weights.get(layer).get(p);
        if (w == null) return;
        requireMembers(sequences);
        if (!kernelFits()) {
            backwardPerMember(w, x, dy, dx, sequences);
            return;
        }
        Tensor dxOut = dx.is_contiguous() ? dx : dx.contiguous();
        SegmentedLora.backward(x.contiguous(), dy.contiguous(), w[0], w[1], sequences.offsetsTensor(), scale, w[2],
                w[3], dxOut);
        if (!dx.is_contiguous()) dx.copy_(dxOut);
    }

    private boolean kernelFits() {
        return rank <= SegmentedLora.MAX_RANK && members <= SegmentedLora.MAX_SEGMENTS;
    }

    private void addPerMember(Tensor[] w, Tensor x, Tensor y, Sequences sequences) {
        Scalar s = new Scalar(scale);
        for (int m = 0; m < members; m++) {
            Tensor xa = torch.matmul(rowsOf(x, sequences, m).to(ScalarType.Float), w[0].select(0, m).t());
            Tensor delta = torch.matmul(xa, w[1].select(0, m).t()).mul(s);
            rowsOf(y, sequences, m).add_(delta.to(y.scalar_type()));
        }
    }

    private void backwardPerMember(Tensor[] w, Tensor x, Tensor dy, Tensor dx, Sequences sequences) {
        Scalar one = new Scalar(1.0);
        Scalar s = new Scalar(scale);
        for (int m = 0; m < members; m++) {
            Tensor x32 = rowsOf(x, sequences, m).to(ScalarType.Float);
            Tensor dy32 = rowsOf(dy, sequences, m).to(ScalarType.Float);
            Tensor a = w[0].select(0, m);
            Tensor xa = torch.matmul(x32, a.t());
            Tensor dyB = torch.matmul(dy32, w[1].select(0, m));
            w[3].select(0, m).addmm_(dy32.t(), xa, one, s);
            w[2].select(0, m).addmm_(dyB.t(), x32, one, s);
            rowsOf(dx, sequences, m).add_(torch.matmul(dyB, a).mul(s).to(dx.scalar_type()));
        }
    }

    private static Tensor rowsOf(Tensor t, Sequences sequences, int m) {
        return sequences.count() == 1 ? t : t.narrow(0, sequences.offset(m), sequences.rows(m));
    }

    private void requireMembers(Sequences sequences) {
        if (sequences.count() != members) {
            throw new IllegalArgumentException("a forward of " + sequences.count() + " sequences through a LoRA of "
                    + members + " members");
        }
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
