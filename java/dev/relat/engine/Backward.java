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
import dev.relat.model.Sequences;
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
 *
 * <p>A batched chunk ({@link Sequences}: several questions, each with its own cache) runs every
 * row-wise step and GEMM once over all its rows; attention's backward runs per sequence, into that
 * sequence's own dK / dV buffers, and each question's LoRA gradients come from its own rows only.
 */
final class Backward implements AutoCloseable {
    private final QwenModel model;
    private final QwenConfig config;
    private final int[] capacities;
    private final Tensor[][] dKeys; // [sequence][layer]
    private final Tensor[][] dValues;
    private final double scale;

    /**
     * dK / dV buffers (zeroed by {@link #reset}) for the caches of a chunk's sequences, in their
     * order: capacities[b] positions for sequence b.
     */
    Backward(QwenModel model, int... capacities) {
        this.model = model;
        this.config = model.config();
        this.capacities = capacities.clone();
        int layers = config.numHiddenLayers();
        dKeys = new Tensor[capacities.length][layers];
        dValues = new Tensor[capacities.length][layers];
        for (int b = 0; b < capacities.length; b++) {
            for (int i = 0; i < layers; i++) {
                dKeys[b][i] = keep(torch.zeros(new long[] {capacities[b], config.numKeyValueHeads(), config.headDim()},
                        new TensorOptions(model.device()).dtype(new ScalarTypeOptional(model.dtype()))));
                dValues[b][i] = keep(torch.zeros_like(dKeys[b][i]));
            }
        }
        scale = Attention.defaultScale(config.headDim());
    }

    /** Zeroes the key / value gradients: call before the backward of each loss. */
    void reset() {
        for (Tensor[] perLayer : dKeys) for (Tensor t : perLayer) t.zero_();
        for (Tensor[] perLayer : dValues) for (Tensor t : perLayer) t.zero_();
    }

    /**
     * Backward through one chunk: dHidden [T, d] is dL/d(the chunk's final hidden states); the
     * sequences' caches must still hold the keys and values the forward used. Accumulates LoRA
     * gradients into lora (may be null; one member per sequence) and returns dL/d(the chunk's input
     * embeddings) [T, d].
     */
    Tensor chunk(ForwardTrace trace, Tensor dHidden, Lora lora) {
        Sequences sequences = trace.sequences();
        if (sequences.count() != capacities.length) {
            throw new IllegalArgumentException("a chunk of " + sequences.count() + " sequences through a backward of "
                    + capacities.length);
        }
        for (int b = 0; b < capacities.length; b++) {
            if (sequences.cache(b).capacity() > capacities[b]) {
                throw new IllegalArgumentException("sequence " + b + "'s cache holds " + sequences.cache(b).capacity()
                        + " positions; its key / value gradients " + capacities[b]);
            }
        }
        Tensor dx = RmsNorm.backward(dHidden, trace.finalInput(), model.weights().norm(), trace.finalRstd());
        PointerScope outer = PointerScope.getInnerScope();
        for (int i = config.numHiddenLayers() - 1; i >= 0; i--) {
            try (PointerScope layerScope = new PointerScope()) {
                dx = layer(i, trace, dx, lora);
                Scopes.escape(dx, outer);
            }
        }
        return dx;
    }

    /** One decoder layer's backward: dL/d(layer output) -> dL/d(layer input), in the caller's scope. */
    private Tensor layer(int i, ForwardTrace trace, Tensor dx, Lora lora) {
        Sequences sequences = trace.sequences();
        int t = trace.length();
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
        lora(lora, i, Projection.DOWN, a.activated(), dx, dActivated, sequences);
        Tensor dGateUp = SwiGlu.backwardFused(dActivated, a.gateUp());
        Tensor dMidNormed = FrozenLinear.inputGradient(dGateUp, w.gateUp());
        lora(lora, i, Projection.GATE, a.midNormed(), dGateUp.narrow(1, 0, inter), dMidNormed, sequences);
        lora(lora, i, Projection.UP, a.midNormed(), dGateUp.narrow(1, inter, inter), dMidNormed, sequences);
        Tensor dMid = dx.add(RmsNorm.backward(dMidNormed, a.mid(), w.postNorm(), a.midRstd()));
        // mid = input + o(attention)
        Tensor dAttention = FrozenLinear.inputGradient(dMid, w.o());
        lora(lora, i, Projection.O, a.attention(), dMid, dAttention, sequences);
        Tensor dq = torch.empty_like(a.q());
        Tensor dk = torch.empty_like(a.k());
        Tensor dv = torch.empty_like(a.k());
        Tensor dAttention3 = dAttention.view(t, hq, hd);
        Tensor attention3 = a.attention().view(t, hq, hd);
        for (int b = 0; b < sequences.count(); b++) {
            int from = sequences.offset(b);
            int n = sequences.rows(b);
            int start = sequences.start(b);
            int seen = start + n;
            KvCache cache = sequences.cache(b);
            Attention.backward(dAttention3.narrow(0, from, n), a.q().narrow(0, from, n), cache.keys(i, seen),
                    cache.values(i, seen), attention3.narrow(0, from, n), a.attentionLse().narrow(0, from, n), scale,
                    dq.narrow(0, from, n), dKeys[b][i].narrow(0, 0, seen), dValues[b][i].narrow(0, 0, seen), true,
                    null);
            dk.narrow(0, from, n).copy_(dKeys[b][i].narrow(0, start, n));
            dv.narrow(0, from, n).copy_(dValues[b][i].narrow(0, start, n));
        }
        Rope.backwardInPlace(dq, dk, sequences.positions(), model.invFreq());
        if (config.qkNorm()) {
            dq = QkNorm.backward(dq, a.qRaw().contiguous(), w.qNorm(), a.qRstd());
            dk = QkNorm.backward(dk, a.kRaw().contiguous(), w.kNorm(), a.kRstd());
        }
        Tensor dQkv = torch.cat(new TensorVector(dq.reshape(t, nq), dk.reshape(t, nkv), dv.reshape(t, nkv)), 1);
        Tensor dNormed = FrozenLinear.inputGradient(dQkv, w.qkv());
        lora(lora, i, Projection.Q, a.inputNormed(), dQkv.narrow(1, 0, nq), dNormed, sequences);
        lora(lora, i, Projection.K, a.inputNormed(), dQkv.narrow(1, nq, nkv), dNormed, sequences);
        lora(lora, i, Projection.V, a.inputNormed(), dQkv.narrow(1, nq + nkv, nkv), dNormed, sequences);
        return dMid.add(RmsNorm.backward(dNormed, a.input(), w.inputNorm(), a.inputRstd()));
    }

    private static void lora(Lora lora, int layer, Projection p, Tensor x, Tensor dy, Tensor dx, Sequences sequences) {
        if (lora != null && lora.targets(layer, p)) lora.backward(layer, p, x, dy, dx, sequences);
    }

    private static Tensor keep(Tensor t) {
        t.retainReference();
        return t;
    }

    @Override
    public void close() {
        for (Tensor[][] buffers : new Tensor[][][] {dKeys, dValues}) {
            for (Tensor[] perLayer : buffers) {
                for (int i = 0; i < perLayer.length; i++) {
                    if (perLayer[i] != null) perLayer[i].releaseReference();
                    perLayer[i] = null;
                }
            }
        }
    }
}
