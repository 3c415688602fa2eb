package dev.relat.engine;

import java.util.Locale;

/** The four methods the engine runs (docs/design.md, "The ReLAT engine"): same code path, same prompts. */
public enum Method {
    /** Plain decoding: no latent thought, no test-time training. */
    SINGLE("single", false, false),
    /** Open loop (LatentMAS-style): K latent steps, then decode; no training. */
    LATENT("latent", true, false),
    /** ReLAT: train LoRA on reconstructing the question through the latent thought, then decode. */
    RELAT("relat", true, true),
    /** Alternative objective: next-token loss on the question with the question in context. */
    QUERY_LM("query-lm", true, true);

    private final String cliName;
    private final boolean thinksInLatents;
    private final boolean trains;

    Method(String cliName, boolean thinksInLatents, boolean trains) {
        this.cliName = cliName;
        this.thinksInLatents = thinksInLatents;
        this.trains = trains;
    }

    /**
     * The name the command line and the results files use.
     *
     * @return single, latent, relat or query-lm
     */
    public String cliName() {
        return cliName;
    }

    /**
     * Whether the method runs a latent thought of {@link Options#latentSteps()} steps.
     *
     * @return false only for {@link #SINGLE}
     */
    public boolean thinksInLatents() {
        return thinksInLatents;
    }

    /**
     * Whether the method trains a LoRA adapter before answering (and so reports losses).
     *
     * @return true for {@link #RELAT} and {@link #QUERY_LM}
     */
    public boolean trains() {
        return trains;
    }

    /**
     * Parses a method as the command line writes it.
     *
     * @param name the {@link #cliName()}, any case; _ may stand for -
     * @return the method
     * @throws IllegalArgumentException naming the unknown method
     */
    public static Method parse(String name) {
        String n = name.toLowerCase(Locale.ROOT).replace('_', '-');
        for (Method m : values()) if (m.cliName.equals(n)) return m;
        throw new IllegalArgumentException("unknown method '" + name + "' (expected single, latent, relat or query-lm)");
    }

    @Override
    public String toString() {
        return cliName;
    }
}
