package dev.relat.engine;

/** The timed phases of one question (also the NVTX range names under --profile). */
public enum Phase {
    PREFILL("prefill"),
    LATENT_CHAIN("latent chain"),
    RECONSTRUCTION_FORWARD("reconstruction forward"),
    BACKWARD("backward"),
    UPDATE("update"),
    ANSWER_DECODE("answer decode");

    private final String label;

    Phase(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }
}
