package dev.relat.model;

import org.bytedeco.pytorch.Tensor;

/**
 * One decoder layer's weights. The q/k/v projections are stored fused as one [(Hq + 2 Hkv) * D, d]
 * matrix and gate/up as one [2 I, d] matrix (one GEMM each); q, k, v, gate and up are row views
 * into them (contiguous, no copy), named as in the checkpoint.
 *
 * @param qkvBias null for qwen3; qBias, kBias, vBias are views into it
 * @param qNorm null for qwen2 (as is kNorm)
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
