package dev.relat.model;

import org.bytedeco.pytorch.Tensor;

/**
 * One decoder layer's weights. The q/k/v projections are stored fused as one [(Hq + 2 Hkv) * D, d]
 * matrix and gate/up as one [2 I, d] matrix (one GEMM each); q, k, v, gate and up are row views
 * into them (contiguous, no copy), named as in the checkpoint. Shapes: d = hidden_size, Hq / Hkv =
 * query / key-value heads, D = head_dim, I = intermediate_size; every tensor in the model dtype.
 * The tensors belong to the model (see {@link QwenWeights}).
 *
 * @param inputNorm the RMSNorm weight before attention [d]
 * @param qkv q_proj, k_proj and v_proj stacked [(Hq + 2 Hkv) * D, d]
 * @param qkvBias their biases stacked [(Hq + 2 Hkv) * D] (qwen2); null for qwen3
 * @param o o_proj [d, Hq * D]
 * @param qNorm the per-head RMSNorm weight of q [D] (qwen3); null for qwen2
 * @param kNorm the per-head RMSNorm weight of k [D] (qwen3); null for qwen2
 * @param postNorm the RMSNorm weight before the MLP [d]
 * @param gateUp gate_proj and up_proj stacked [2 I, d]
 * @param down down_proj [d, I]
 * @param q q_proj, a view into qkv [Hq * D, d]
 * @param k k_proj, a view into qkv [Hkv * D, d]
 * @param v v_proj, a view into qkv [Hkv * D, d]
 * @param qBias a view into qkvBias [Hq * D]; null for qwen3
 * @param kBias a view into qkvBias [Hkv * D]; null for qwen3
 * @param vBias a view into qkvBias [Hkv * D]; null for qwen3
 * @param gate gate_proj, a view into gateUp [I, d]
 * @param up up_proj, a view into gateUp [I, d]
 */
public record LayerWeights(
        Tensor inputNorm,
        Tensor qkv,
        Tensor qkvBias,
        Tensor o,
        Tensor qNorm,
        Tensor kNorm,
        Tensor postNorm,
        Tensor gateUp,
        Tensor down,
        Tensor q,
        Tensor k,
        Tensor v,
        Tensor qBias,
        Tensor kBias,
        Tensor vBias,
        Tensor gate,
        Tensor up) {

    /** Builds the views from the fused tensors. */
    static LayerWeights of(QwenConfig c, Tensor inputNorm, Tensor qkv, Tensor qkvBias, Tensor o, Tensor qNorm,
            Tensor kNorm, Tensor postNorm, Tensor gateUp, Tensor down) {
        long nq = (long) c.numAttentionHeads() * c.headDim();
        long nkv = (long) c.numKeyValueHeads() * c.headDim();
        long inter = c.intermediateSize();
        return new LayerWeights(inputNorm, qkv, qkvBias, o, qNorm, kNorm, postNorm, gateUp, down,
                Tensors.keep(qkv.narrow(0, 0, nq)), Tensors.keep(qkv.narrow(0, nq, nkv)),
                Tensors.keep(qkv.narrow(0, nq + nkv, nkv)),
                qkvBias == null ? null : Tensors.keep(qkvBias.narrow(0, 0, nq)),
                qkvBias == null ? null : Tensors.keep(qkvBias.narrow(0, nq, nkv)),
                qkvBias == null ? null : Tensors.keep(qkvBias.narrow(0, nq + nkv, nkv)),
                Tensors.keep(gateUp.narrow(0, 0, inter)), Tensors.keep(gateUp.narrow(0, inter, inter)));
    }
}
