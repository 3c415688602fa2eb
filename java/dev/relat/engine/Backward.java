package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.FrozenLinear;
import dev.relat.model.KvCache;
import dev.relat.model.LayerActivations;
import dev.relat.model.LayerWeights;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.model.Scopes;
import dev.relat.ops.Attention;
import dev.relat.ops.QkNorm;
import dev.relat.ops.RmsNorm;
import dev.relat.ops.Rope;
import dev.relat.ops.SwiGlu;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * The hand-composed backward of the decoder over one traced forward chunk (libtorch offers no
 * custom autograd function from Java, so this is written out layer by layer, in the spirit of
 * llm.c): final RMSNorm, then per layer in reverse the MLP (down GEMM, SwiGLU, gate|up GEMM,
 * RMSNorm) and attention (o GEMM, attention backward, RoPE backward, QK-norm, q|k|v GEMM,
 * RMSNorm), with the LoRA gradients of every adapted projection accumulated on the way. Every
 * non-GEMM piece is a relat kernel's backward; the GEMMs are libtorch's.
 *
 * <p>Keys and values cross chunks: a chunk's queries attend to the keys of every earlier position
 * in the cache. The gradients of those keys and values are accumulated per layer into dK / dV
 * buffers that live across the chunks of one backward; chunks are processed latest first, so when
 * a chunk's own keys are reached their gradient is complete. This is how the loss reaches the
 * prompt prefill through the latent steps that attend to it.
 */
final class Backward implements AutoCloseable {
    private final QwenModel model;
    private final QwenConfig config;
    private final Tensor[] dKeys;
    private final Tensor[] dValues;
    private final double scale;

    /** dK / dV buffers for a cache of capacity positions (zeroed by {@link #reset}). */
    Backward(QwenModel model, int capacity) {
        this.model = model;
        this.config = model.config();
        int layers = config.numHiddenLayers();
        dKeys = new Tensor[layers];
        dValues = new Tensor[layers];
        for (int i = 0; i < layers; i++) {
            dKeys[i] = keep(torch.zeros(new long[] {capacity, config.numKeyValueHeads(), config.headDim()},
                    new TensorOptions(model.device())
                            .dtype(new ScalarTypeOptional(model.dtype()))));
            dValues[i] = keep(torch.zeros_like(dKeys[i]));
        }
        scale = Attention.defaultScale(config.headDim());
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
        Tensor positions = model.positions(trace.start(), trace.length());
        Tensor dx = RmsNorm.backward(dHidden, trace.finalInput(), model.weights().norm(), trace.finalRstd());
        PointerScope outer = PointerScope.getInnerScope();
        for (int i = config.numHiddenLayers() - 1; i >= 0; i--) {
            try (PointerScope layerScope = new PointerScope()) {
                dx = layer(i, trace, dx, cache, lora, positions);
                Scopes.escape(dx, outer);
            }
        }
        return dx;
    }

    /** One decoder layer's backward: dL/d(layer output) -> dL/d(layer input), in the caller's scope. */
    private Tensor layer(int i, ForwardTrace trace, Tensor dx, KvCache cache, Lora lora, Tensor positions) {
        int t = trace.length();
        int start = trace.start();
        int hq = config.numAttentionHeads();
        int hkv = config.numKeyValueHeads();
        int hd = config.headDim();
        long nq = (long) hq * hd;
        long nkv = (long) hkv * hd;
        long inter = config.intermediateSize();
        LayerActivations a = trace.layers().get(i);
        LayerWeights w = model.weights().layers().get(i);
        // out = mid + down(activated)
        Tensor dActivated = FrozenLinear.inputGradient(dx, w.down());
        lora(lora, i, Projection.DOWN, a.activated(), dx, dActivated);
        Tensor dGateUp = SwiGlu.backwardFused(dActivated, a.gateUp());
        Tensor dMidNormed = FrozenLinear.inputGradient(dGateUp, w.gateUp());
        lora(lora, i, Projection.GATE, a.midNormed(), dGateUp.narrow(1, 0, inter), dMidNormed);
        lora(lora, i, Projection.UP, a.midNormed(), dGateUp.narrow(1, inter, inter), dMidNormed);
        Tensor dMid = dx.add(RmsNorm.backward(dMidNormed, a.mid(), w.postNorm(), a.midRstd()));
        // mid = input + o(attention)
        Tensor dAttention = FrozenLinear.inputGradient(dMid, w.o());
        lora(lora, i, Projection.O, a.attention(), dMid, dAttention);
        Tensor dq = torch.empty_like(a.q());
        int seen = start + t;
        Attention.backward(dAttention.view(t, hq, hd), a.q(), cache.keys(i, seen), cache.values(i, seen),
                a.attention().view(t, hq, hd), a.attentionLse(), scale, dq, dKeys[i].narrow(0, 0, seen),
                dValues[i].narrow(0, 0, seen), true, null);
        Tensor dk = dKeys[i].narrow(0, start, t).clone();
        Tensor dv = dValues[i].narrow(0, start, t);
        Rope.backwardInPlace(dq, dk, positions, model.invFreq());
        if (config.qkNorm()) {
            dq = QkNorm.backward(dq, a.qRaw().contiguous(), w.qNorm(), a.qRstd());
            dk = QkNorm.backward(dk, a.kRaw().contiguous(), w.kNorm(), a.kRstd());
        }
        Tensor dQkv = torch.cat(new TensorVector(dq.reshape(t, nq), dk.reshape(t, nkv), dv.reshape(t, nkv)), 1);
        Tensor dNormed = FrozenLinear.inputGradient(dQkv, w.qkv());
        lora(lora, i, Projection.Q, a.inputNormed(), dQkv.narrow(1, 0, nq), dNormed);
        lora(lora, i, Projection.K, a.inputNormed(), dQkv.narrow(1, nq, nkv), dNormed);
        lora(lora, i, Projection.V, a.inputNormed(), dQkv.narrow(1, nq + nkv, nkv), dNormed);
        return dMid.add(RmsNorm.backward(dNormed, a.input(), w.inputNorm(), a.inputRstd()));
    }

    private static void lora(Lora lora, int layer, Projection p, Tensor x, Tensor dy, Tensor dx) {
        if (lora != null && lora.targets(layer, p)) lora.backward(layer, p, x, dy, dx);
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
