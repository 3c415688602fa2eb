package dev.relat.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hugging Face tensor names of the Qwen2 / Qwen3 causal LMs and the shape each must have. Shapes:
 * vocab = vocab_size, d = hidden_size, Hq / Hkv = query / key-value heads, D = head_dim, I =
 * intermediate_size. The per-layer names are suffixes: {@link #layer} prefixes them.
 */
public final class QwenNames {
    /** The token embedding matrix [vocab, d]. */
    public static final String EMBED = "model.embed_tokens.weight";
    /** The final RMSNorm's weight [d]. */
    public static final String NORM = "model.norm.weight";
    /** The LM head [vocab, d]; absent from a checkpoint with tied embeddings. */
    public static final String LM_HEAD = "lm_head.weight";
    /** Per layer: the RMSNorm weight before attention [d]. */
    public static final String INPUT_NORM = "input_layernorm.weight";
    /** Per layer: q_proj [Hq * D, d]. */
    public static final String Q = "self_attn.q_proj.weight";
    /** Per layer: k_proj [Hkv * D, d]. */
    public static final String K = "self_attn.k_proj.weight";
    /** Per layer: v_proj [Hkv * D, d]. */
    public static final String V = "self_attn.v_proj.weight";
    /** Per layer: o_proj [d, Hq * D]. */
    public static final String O = "self_attn.o_proj.weight";
    /** Per layer, qwen2 only: q_proj's bias [Hq * D]. */
    public static final String Q_BIAS = "self_attn.q_proj.bias";
    /** Per layer, qwen2 only: k_proj's bias [Hkv * D]. */
    public static final String K_BIAS = "self_attn.k_proj.bias";
    /** Per layer, qwen2 only: v_proj's bias [Hkv * D]. */
    public static final String V_BIAS = "self_attn.v_proj.bias";
    /** Per layer, qwen3 only: q's per-head RMSNorm weight [D]. */
    public static final String Q_NORM = "self_attn.q_norm.weight";
    /** Per layer, qwen3 only: k's per-head RMSNorm weight [D]. */
    public static final String K_NORM = "self_attn.k_norm.weight";
    /** Per layer: the RMSNorm weight before the MLP [d]. */
    public static final String POST_NORM = "post_attention_layernorm.weight";
    /** Per layer: gate_proj [I, d]. */
    public static final String GATE = "mlp.gate_proj.weight";
    /** Per layer: up_proj [I, d]. */
    public static final String UP = "mlp.up_proj.weight";
    /** Per layer: down_proj [d, I]. */
    public static final String DOWN = "mlp.down_proj.weight";

    private QwenNames() {}

    /**
     * The full name of a per-layer tensor.
     *
     * @param i the layer, from 0
     * @param suffix one of the per-layer names above, e.g. {@link #Q}
     * @return e.g. model.layers.3.self_attn.q_proj.weight
     */
    public static String layer(int i, String suffix) {
        return "model.layers." + i + "." + suffix;
    }

    /**
     * Every tensor the architecture needs, with its shape, in checkpoint order.
     *
     * @param c the architecture (qwen2 adds the biases, qwen3 the QK-norms, untied the LM head)
     * @return a new map from full name to shape
     */
    public static Map<String, long[]> expectedShapes(QwenConfig c) {
        long d = c.hiddenSize();
        long hq = (long) c.numAttentionHeads() * c.headDim();
        long hkv = (long) c.numKeyValueHeads() * c.headDim();
        long inter = c.intermediateSize();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(EMBED, new long[] {c.vocabSize(), d});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            m.put(layer(i, INPUT_NORM), new long[] {d});
            m.put(layer(i, Q), new long[] {hq, d});
            m.put(layer(i, K), new long[] {hkv, d});
            m.put(layer(i, V), new long[] {hkv, d});
            if (c.qkvBias()) {
                m.put(layer(i, Q_BIAS), new long[] {hq});
                m.put(layer(i, K_BIAS), new long[] {hkv});
                m.put(layer(i, V_BIAS), new long[] {hkv});
            }
            m.put(layer(i, O), new long[] {d, hq});
            if (c.qkNorm()) {
                m.put(layer(i, Q_NORM), new long[] {c.headDim()});
                m.put(layer(i, K_NORM), new long[] {c.headDim()});
            }
            m.put(layer(i, POST_NORM), new long[] {d});
            m.put(layer(i, GATE), new long[] {inter, d});
            m.put(layer(i, UP), new long[] {inter, d});
            m.put(layer(i, DOWN), new long[] {d, inter});
        }
        m.put(NORM, new long[] {d});
        if (!c.tieWordEmbeddings()) m.put(LM_HEAD, new long[] {c.vocabSize(), d});
        return m;
    }
}
