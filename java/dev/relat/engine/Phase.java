package dev.relat.engine;

/** The timed phases of one question (also the NVTX range names under --profile). */
public enum Phase {
    /** The prompt through the model into the KV cache: in each relat training step and before the answer. */
    PREFILL("prefill"),
    /** The latent thought: K latent steps and their forwards through the model. */
    LATENT_CHAIN("latent chain"),
    /** The training loss's forward: the reconstruction pass (relat) or the prompt (query-lm). */
    RECONSTRUCTION_FORWARD("reconstruction forward"),
    /** The hand-written backward into the LoRA gradients. */
    BACKWARD("backward"),
    /** One AdamW step of the LoRA adapter. */
    UPDATE("update"),
    /** Decoding the answer, token by token. */
    ANSWER_DECODE("answer decode");

    private final String label;

    Phase(String label) {
        this.label = label;
    }

    /**
     * The phase's name in output and in NVTX ranges.
     *
     * @return e.g. "latent chain"
     */
    public String label() {
        return label;
    }
}
