package dev.relat.engine;

import java.util.List;
import java.util.Map;

/**
 * What one solve reports: the answer, token counts, the test-time-training loss
 * before each update and after the last one (empty for methods that do not train), wall time per
 * phase in nanoseconds summed over the question, and the peak device memory in bytes. Plain Java
 * data: a result holds no native memory and outlives its engine.
 *
 * @param method the method that ran
 * @param answer the decoded answer, special tokens dropped; the stop token is not part of it
 * @param promptTokens tokens of the rendered prompt (system message, question, generation prompt)
 * @param latentTokens K, the latent steps of the thought; 0 for {@link Method#SINGLE}
 * @param answerTokens tokens decoded, the stop token not counted
 * @param losses the training loss before each update and after the last (N + 1 values, each the
 *     mean cross-entropy per question token in nats); empty for a method that does not train
 * @param phaseNanos wall time per phase in nanoseconds, summed over the times it ran; each phase
 *     waits for the device's queued work before its clock stops. Phases that did not run are absent
 * @param peakDeviceBytes on CUDA the caching allocator's peak allocated bytes during the question;
 *     on the CPU the process's peak resident set (weights and JVM included: an upper bound);
 *     -1 when unknown
 */
public record Result(
        Method method,
        String answer,
        int promptTokens,
        int latentTokens,
        int answerTokens,
        List<Double> losses,
        Map<Phase, Long> phaseNanos,
        long peakDeviceBytes) {
    /**
     * Copies losses and phaseNanos into unmodifiable collections.
     *
     * @param method the method that ran
     * @param answer the decoded answer
     * @param promptTokens tokens of the rendered prompt
     * @param latentTokens K, or 0
     * @param answerTokens tokens decoded
     * @param losses the training losses (copied)
     * @param phaseNanos nanoseconds per phase (copied)
     * @param peakDeviceBytes peak memory in bytes, or -1
     */
    public Result {
        losses = List.copyOf(losses);
        phaseNanos = Map.copyOf(phaseNanos);
    }
}
