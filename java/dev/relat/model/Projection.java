package dev.relat.model;

import java.util.Locale;

/**
 * The linear projections of a decoder layer (what a LoRA adapter can target). Widths: d =
 * hidden_size, Hq / Hkv = query / key-value heads, D = head_dim, I = intermediate_size.
 */
public enum Projection {
    /** self_attn.q_proj: d to Hq * D. */
    Q,
    /** self_attn.k_proj: d to Hkv * D. */
    K,
    /** self_attn.v_proj: d to Hkv * D. */
    V,
    /** self_attn.o_proj: Hq * D to d. */
    O,
    /** mlp.gate_proj: d to I. */
    GATE,
    /** mlp.up_proj: d to I. */
    UP,
    /** mlp.down_proj: I to d. */
    DOWN;

    /**
     * Parses q, k_proj, GATE, ...
     *
     * @param name the projection's name, any case, with or without "_proj"
     * @return the projection
     * @throws IllegalArgumentException naming the unknown projection
     */
    public static Projection parse(String name) {
        try {
            return valueOf(name.strip().toUpperCase(Locale.ROOT).replace("_PROJ", ""));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown projection '" + name + "' (expected q, k, v, o, gate, up, down)");
        }
    }
}
