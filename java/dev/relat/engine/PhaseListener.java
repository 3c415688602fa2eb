package dev.relat.engine;

/**
 * Hooks around the timed phases of one question. The command line's {@code --profile} passes one
 * that opens NVTX ranges and calls cudaProfilerStart/Stop around the question, so Nsight captures
 * exactly one question. Called on the solving thread; must not throw.
 */
public interface PhaseListener {
    /** The listener that does nothing. */
    PhaseListener NONE = new PhaseListener() {};

    /** Before the first phase of a question (the measured region starts). */
    default void questionStart() {}

    /** After the last phase of a question (the measured region ends), also when solve fails. */
    default void questionEnd() {}

    /**
     * A phase begins; phases do not nest and may repeat (one per update step).
     *
     * @param phase the phase beginning
     */
    default void begin(Phase phase) {}

    /**
     * The phase begun last ends, also when it failed; its time is taken after the device's queued
     * work finished.
     *
     * @param phase the phase ending, the one begun last
     */
    default void end(Phase phase) {}
}
