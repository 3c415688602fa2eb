package dev.relat.engine;

import java.util.List;
import java.util.Map;

/**
 * What one solve reports: the answer, token counts, the test-time-training loss
 * before each update and after the last one (empty for methods that do not train), wall time per
 * phase in nanoseconds summed over the question, and the peak device memory in bytes.
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
    public Result {
        losses = List.copyOf(losses);
        phaseNanos = Map.copyOf(phaseNanos);
    }
}
