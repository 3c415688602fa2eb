package dev.relat.engine;

import java.util.List;
import java.util.Map;

/**
 * What one solve reports: the answer, token counts (per agent for the multi-agent methods), the test-time-training loss
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
 * @param agents for a multi-agent method, each agent's part of the answer pass, in order (for
 *     relat-mas the pass after training); empty for the single-agent methods. For these methods
 *     promptTokens, latentTokens and answerTokens are the sums over the agents
 */
public record Result(
        Method method,
        String answer,
        int promptTokens,
        int latentTokens,
        int answerTokens,
        List<Double> losses,
        Map<Phase, Long> phaseNanos,
        long peakDeviceBytes,
        List<AgentRun> agents) {
    /**
     * One agent's part of a multi-agent answer pass.
     *
     * @param role the agent's role (planner, critic, ...)
     * @param promptTokens tokens of its rendered prompt (for text-mas, the earlier agents' texts included)
     * @param latentSteps latent steps it appended to the working memory (0 for the last agent and for text-mas)
     * @param decodedTokens tokens it decoded, the stop token not counted (text-mas: every agent; else the last)
     * @param phaseNanos wall time of its phases in nanoseconds, as in {@link Result#phaseNanos()}
     */
    public record AgentRun(String role, int promptTokens, int latentSteps, int decodedTokens,
            Map<Phase, Long> phaseNanos) {
        /**
         * Copies phaseNanos.
         *
         * @param role the agent's role
         * @param promptTokens tokens of its prompt
         * @param latentSteps latent steps it appended
         * @param decodedTokens tokens it decoded
         * @param phaseNanos nanoseconds per phase (copied)
         */
        public AgentRun {
            phaseNanos = Map.copyOf(phaseNanos);
        }
    }

    /**
     * A single-agent result: no agents.
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
    public Result(Method method, String answer, int promptTokens, int latentTokens, int answerTokens,
            List<Double> losses, Map<Phase, Long> phaseNanos, long peakDeviceBytes) {
        this(method, answer, promptTokens, latentTokens, answerTokens, losses, phaseNanos, peakDeviceBytes, List.of());
    }

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
     * @param agents each agent's part (copied)
     */
    public Result {
        losses = List.copyOf(losses);
        phaseNanos = Map.copyOf(phaseNanos);
        agents = List.copyOf(agents);
    }
}
