package dev.relat.model;

import java.util.LinkedHashMap;
import java.util.Map;

/** Hugging Face tensor names of the Qwen2 / Qwen3 causal LMs and the shape each must have. */
public final class QwenNames {
    public static final String EMBED = "model.embed_tokens.weight";
    public static final String NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";
    public static final String INPUT_NORM = "input_layernorm.weight";
    public static final String Q = "self_attn.q_proj.weight";
    public static final String K = "self_attn.k_proj.weight";
    public static final String V = "self_attn.v_proj.weight";
    public static final String O = "self_attn.o_proj.weight";
    public static final String Q_BIAS = "self_attn.q_proj.bias";
    public static final String K_BIAS = "self_attn.k_proj.bias";
    public static final String V_BIAS = "self_attn.v_proj.bias";
    public static final String Q_NORM = "self_attn.q_norm.weight";
    public static final String K_NORM = "self_attn.k_norm.weight";
    public static final String POST_NORM = "post_attention_layernorm.weight";
    public static final String GATE = "mlp.gate_proj.weight";
    public static final String UP = "mlp.up_proj.weight";
    public static final String DOWN = "mlp.down_proj.weight";

    private QwenNames() {}

    public static String layer(int i, String suffix) {
        return "model.layers." + i + "." + suffix;
    }

    /** Every tensor the architecture needs, with its shape, in checkpoint order. */
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
