package dev.relat.model;

import org.bytedeco.pytorch.Tensor;

/**
 * What one decoder layer's forward keeps for the backward pass (engine issue #7), for a chunk of
 * T positions. Shapes: d = hidden, Hq / Hkv heads, D = head_dim, I = intermediate.
 *
 * @param input the residual stream entering the layer [T, d]
 * @param inputRstd fp32 1/rms of each row of input [T]
 * @param inputNormed RMSNorm(input) * weight [T, d]
 * @param qRaw q before QK-norm [T, Hq, D] (qwen3; null for qwen2, where it equals q before RoPE)
 * @param kRaw k before QK-norm [T, Hkv, D] (qwen3; else null)
 * @param qRstd fp32 1/rms of each q head row [T * Hq] (qwen3; else null)
 * @param kRstd fp32 1/rms of each k head row [T * Hkv] (qwen3; else null)
 * @param q q after QK-norm and RoPE [T, Hq, D]
 * @param k k after RoPE [T, Hkv, D] (also in the KV cache)
 * @param v v [T, Hkv, D] (also in the KV cache)
 * @param attention attention output before o_proj [T, Hq * D]
 * @param attentionLse fp32 log-sum-exp of the attention scores [T, Hq] (relat's attention kernel)
 * @param mid the residual stream after attention [T, d]
 * @param midRstd fp32 1/rms of each row of mid [T]
 * @param midNormed RMSNorm(mid) * weight [T, d]
 * @param gateUp the fused gate|up projection [T, 2 I]
 * @param activated silu(gate) * up [T, I]
 */
public record LayerActivations(
        Tensor input,
        Tensor inputRstd,
        Tensor inputNormed,
        Tensor qRaw,
        Tensor kRaw,
        Tensor qRstd,
        Tensor kRstd,
        Tensor q,
        Tensor k,
        Tensor v,
        Tensor attention,
        Tensor attentionLse,
        Tensor mid,
        Tensor midRstd,
        Tensor midNormed,
        Tensor gateUp,
        Tensor activated) {}
