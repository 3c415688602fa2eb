package dev.relat.engine;

import java.util.Locale;

/** What the answer is decoded after. */
public enum AnswerContext {
    /** [prompt | latent thought] (default). */
    LATENTS,
    /** The prompt alone: the adapted model answers without the latent thought in its context. */
    QUESTION;

    /**
     * Parses an answer context as the command line writes it.
     *
     * @param name latents (or latent) or question, any case
     * @return the answer context
     * @throws IllegalArgumentException naming the unknown value
     */
    public static AnswerContext parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "latents", "latent" -> LATENTS;
            case "question" -> QUESTION;
            default -> throw new IllegalArgumentException(
                    "unknown answer context '" + name + "' (expected latents or question)");
        };
    }
}
