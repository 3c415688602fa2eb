package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.KvCache;
import dev.relat.model.LayerActivations;
import dev.relat.model.LayerWeights;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.ops.Attention;
import dev.relat.ops.Rope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The hand-composed backward of the decoder over one traced forward chunk (libtorch offers no
 * custom autograd function from Java, so this is written out layer by layer, in the spirit of
 * llm.c): final RMSNorm, then per layer in reverse the MLP (down GEMM, SwiGLU, gate|up GEMM,
 * RMSNorm) and attention (o GEMM, relat's attention backward, RoPE backward, QK-norm, q|k|v GEMM,
 * RMSNorm), with the LoRA gradients of every adapted projection accumulated on the way.
 *
 * <p>Keys and values cross chunks: a chunk's queries attend to the keys of every earlier position
 * in the cache. The gradients of those keys and values are accumulated per layer into dK / dV
 * buffers that live across the chunks of one backward; chunks are processed latest first, so when
 * a chunk's own keys are reached their gradient is complete. This is how the loss reaches the
 * prompt prefill through the latent steps that attend to it.
 */
final class Backward implements AutoCloseable {
    private final QwenModel model;
    private final QwenConfig c;
    private final Tensor[] dKeys;
    private final Tensor[] dValues;
    private final double scale;

    /** dK / dV buffers for a cache of capacity positions (zeroed by {@link #reset}). */
    Backward(QwenModel model, int capacity) {
        this.model = model;
        this.c = model.config();
        int layers = c.numHiddenLayers();
        dKeys = new Tensor[layers];
        dValues = new Tensor[layers];
        for (int i = 0; i < layers; i++) {
            dKeys[i] = keep(torch.zeros(new long[] {capacity, c.numKeyValueHeads(), c.headDim()},
                    new org.bytedeco.pytorch.TensorOptions(model.device())
                            .dtype(new ScalarTypeOptional(model.dtype()))));
            dValues[i] = keep(torch.zeros_like(dKeys[i]));
        }
        scale = Attention.defaultScale(c.headDim());
    }

    /** Zeroes the key / value gradients: call before the backward of each loss. */
    void reset() {
        for (int i = 0; i < dKeys.length; i++) {
            dKeys[i].zero_();
            dValues[i].zero_();
        }
    }

    /**
     * Backward through one chunk: dHidden [T, d] is dL/d(the chunk's final hidden states); the
     * cache must still hold the keys and values the forward used. Accumulates LoRA gradients into
     * lora (may be null) and returns dL/d(the chunk's input embeddings) [T, d].
     */
    Tensor chunk(ForwardTrace trace, Tensor dHidden, KvCache cache, Lora lora) {
        int t = trace.length();
        int start = trace.start();
        int hq = c.numAttentionHeads();
        int hkv = c.numKeyValueHeads();
        int hd = c.headDim();
        long nq = (long) hq * hd;
        long nkv = (long) hkv * hd;
        long inter = c.intermediateSize();
        Tensor positions = model.positions(start, t);
        Tensor dx = rmsNormBackward(trace.finalInput(), model.weights().norm(), trace.finalRstd(), dHidden);
        for (int i = c.numHiddenLayers() - 1; i >= 0; i--) {
            LayerActivations a = trace.layers().get(i);
            LayerWeights w = model.weights().layers().get(i);
            // out = mid + down(activated)
            Tensor dActivated = torch.matmul(dx, w.down());
            lora(lora, i, Projection.DOWN, a.activated(), dx, dActivated);
            Tensor dGateUp = swigluBackward(a.gateUp(), dActivated, inter);
            Tensor dMidNormed = torch.matmul(dGateUp, w.gateUp());
            lora(lora, i, Projection.GATE, a.midNormed(), dGateUp.narrow(1, 0, inter), dMidNormed);
            lora(lora, i, Projection.UP, a.midNormed(), dGateUp.narrow(1, inter, inter), dMidNormed);
            Tensor dMid = dx.add(rmsNormBackward(a.mid(), w.postNorm(), a.midRstd(), dMidNormed));
            // mid = input + o(attention)
            Tensor dAttention = torch.matmul(dMid, w.o());
            lora(lora, i, Projection.O, a.attention(), dMid, dAttention);
            Tensor dq = torch.empty_like(a.q());
            int seen = start + t;
            Attention.backward(dAttention.view(t, hq, hd), a.q(), cache.keys(i, seen), cache.values(i, seen),
                    a.attention().view(t, hq, hd), a.attentionLse(), scale, dq, dKeys[i].narrow(0, 0, seen),
                    dValues[i].narrow(0, 0, seen), true, null);
            Tensor dk = dKeys[i].narrow(0, start, t).clone();
            Tensor dv = dValues[i].narrow(0, start, t);
            Rope.backwardInPlace(dq, dk, positions, model.invFreq());
            if (c.qkNorm()) {
                dq = rmsNormBackward(a.qRaw(), w.qNorm(), a.qRstd(), dq);
                dk = rmsNormBackward(a.kRaw(), w.kNorm(), a.kRstd(), dk);
            }
            Tensor dQkv = torch.cat(new TensorVector(dq.reshape(t, nq), dk.reshape(t, nkv), dv.reshape(t, nkv)), 1);
            Tensor dNormed = torch.matmul(dQkv, w.qkv());
            lora(lora, i, Projection.Q, a.inputNormed(), dQkv.narrow(1, 0, nq), dNormed);
            lora(lora, i, Projection.K, a.inputNormed(), dQkv.narrow(1, nq, nkv), dNormed);
            lora(lora, i, Projection.V, a.inputNormed(), dQkv.narrow(1, nq + nkv, nkv), dNormed);
            dx = dMid.add(rmsNormBackward(a.input(), w.inputNorm(), a.inputRstd(), dNormed));
        }
        return dx;
    }

    private static void lora(Lora lora, int layer, Projection p, Tensor x, Tensor dy, Tensor dx) {
        if (lora != null && lora.targets(layer, p)) lora.backward(layer, p, x, dy, dx);
    }

    /**
     * RMSNorm backward over the last dimension, fp32 math: with r = 1/rms and xhat = x r,
     * dx = r (g - xhat mean(g xhat)), g = dy * weight. rstd holds r per row.
     */
    static Tensor rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy) {
        long width = x.size(-1);
        Tensor x32 = x.reshape(-1, width).to(ScalarType.Float);
        Tensor r = rstd.reshape(-1, 1);
        Tensor xhat = x32.mul(r);
        Tensor g = dy.reshape(-1, width).to(ScalarType.Float).mul(weight.to(ScalarType.Float));
        Tensor mean = g.mul(xhat).mean(new long[] {-1}, true, new ScalarTypeOptional());
        Tensor dx = g.sub(xhat.mul(mean)).mul(r);
        return dx.to(x.scalar_type()).view(shape(x));
    }

    /** SwiGLU backward from the fused [gate | up] [T, 2I]: d gate = dy up silu'(gate), d up = dy silu(gate). */
    static Tensor swigluBackward(Tensor gateUp, Tensor dy, long inter) {
        Tensor g = gateUp.narrow(1, 0, inter).to(ScalarType.Float);
        Tensor u = gateUp.narrow(1, inter, inter).to(ScalarType.Float);
        Tensor d = dy.to(ScalarType.Float);
        Tensor s = torch.sigmoid(g);
        Tensor silu = g.mul(s);
        // silu'(g) = s (1 + g (1 - s))
        Tensor dSilu = s.mul(g.mul(s.neg().add(new Scalar(1.0))).add(new Scalar(1.0)));
        Tensor dGate = d.mul(u).mul(dSilu);
        Tensor dUp = d.mul(silu);
        return torch.cat(new TensorVector(dGate, dUp), 1).to(gateUp.scalar_type());
    }

    private static long[] shape(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) s[i] = t.size(i);
        return s;
    }

    private static Tensor keep(Tensor t) {
        t.retainReference();
        return t;
    }

    @Override
    public void close() {
        for (int i = 0; i < dKeys.length; i++) {
            if (dKeys[i] != null) dKeys[i].releaseReference();
            if (dValues[i] != null) dValues[i].releaseReference();
            dKeys[i] = dValues[i] = null;
        }
    }
}
