package dev.relat.engine;

import java.util.Arrays;
import java.util.Locale;

/**
 * The methods the engine runs (docs/design.md, "The ReLAT engine"): same code path, same prompts. The
 * single-agent methods answer the question's prompt; the multi-agent ones ({@link #multiAgent()})
 * run the {@link Options#agents()} in turn, LatentMAS's sequential setting.
 */
public enum Method {
    /** Plain decoding: no latent thought, no test-time training. */
    SINGLE("single", false, false, false),
    /** Open loop (LatentMAS-style): K latent steps, then decode; no training. */
    LATENT("latent", true, false, false),
    /** ReLAT: train LoRA on reconstructing the question through the latent thought, then decode. */
    RELAT("relat", true, true, false),
    /** Alternative objective: next-token loss on the question with the question in context. */
    QUERY_LM("query-lm", true, true, false),
    /**
     * LatentMAS, open loop: each agent but the last prefills its prompt on top of the shared KV
     * working memory and appends K latent steps; the last agent (the judger) prefills its prompt on
     * top of it all and decodes the answer.
     */
    LATENT_MAS("latent-mas", true, false, true),
    /** The text multi-agent baseline: every agent decodes text, which goes into the later agents' prompts. */
    TEXT_MAS("text-mas", false, false, true),
    /**
     * ReLAT on the latent-mas pipeline: the reconstruction follows the whole working memory and its
     * loss reaches the adapter through every agent's latent steps and prompt prefill.
     */
    RELAT_MAS("relat-mas", true, true, true);

    private final String cliName;
    private final boolean thinksInLatents;
    private final boolean trains;
    private final boolean multiAgent;

    Method(String cliName, boolean thinksInLatents, boolean trains, boolean multiAgent) {
        this.cliName = cliName;
        this.thinksInLatents = thinksInLatents;
        this.trains = trains;
        this.multiAgent = multiAgent;
    }

    /**
     * The name the command line and the results files use.
     *
     * @return single, latent, relat, query-lm, latent-mas, text-mas or relat-mas
     */
    public String cliName() {
        return cliName;
    }

    /**
     * Whether the method runs a latent thought of {@link Options#latentSteps()} steps.
     *
     * Each agent but the last of a multi-agent method runs one.
     *
     * @return false for {@link #SINGLE} and {@link #TEXT_MAS}
     */
    public boolean thinksInLatents() {
        return thinksInLatents;
    }

    /**
     * Whether the method runs the agents of {@link Options#agents()} over a shared working memory.
     *
     * @return true for {@link #LATENT_MAS}, {@link #TEXT_MAS} and {@link #RELAT_MAS}
     */
    public boolean multiAgent() {
        return multiAgent;
    }

    /**
     * Whether the method trains a LoRA adapter before answering (and so reports losses).
     *
     * @return true for {@link #RELAT}, {@link #QUERY_LM} and {@link #RELAT_MAS}
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
        throw new IllegalArgumentException("unknown method '" + name + "' (expected one of "
                + String.join(", ", Arrays.stream(values()).map(Method::cliName).toList()) + ")");
    }

    @Override
    public String toString() {
        return cliName;
    }
}
