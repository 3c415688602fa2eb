package dev.relat.model;

import java.util.Locale;

/** The linear projections of a decoder layer (what a LoRA adapter can target). */
public enum Projection {
    Q, K, V, O, GATE, UP, DOWN;

    /** Parses q, k_proj, GATE, ... */
    public static Projection parse(String name) {
        try {
            return valueOf(name.strip().toUpperCase(Locale.ROOT).replace("_PROJ", ""));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown projection '" + name + "' (expected q, k, v, o, gate, up, down)");
        }
    }
}
