package dev.relat.cli;

import dev.relat.engine.Options;
import java.util.Map;

/** Helpers the commands share: option values that fail become {@link UsageError}s. */
final class Commands {
    private Commands() {}

    /** The command-line flag of each engine option, so a refusal names what the user typed. */
    private static final Map<String, String> FLAGS = Map.ofEntries(Map.entry("latentSteps", "-K/--latent-steps"),
            Map.entry("temperatureLatent (tau)", "--tau"), Map.entry("updateSteps", "-N/--update-steps"),
            Map.entry("learningRate", "--lr"), Map.entry("loraRank", "--rank"), Map.entry("loraAlpha", "--alpha"),
            Map.entry("loraTargets", "--targets"), Map.entry("adamBeta1", "--adam-beta1"),
            Map.entry("adamBeta2", "--adam-beta2"), Map.entry("adamEps", "--adam-eps"),
            Map.entry("weightDecay", "--weight-decay"), Map.entry("realignLambda", "--realign-lambda"),
            Map.entry("maxNewTokens", "--max-new-tokens"), Map.entry("maxContext", "--max-context"),
            Map.entry("temperature", "--temperature"), Map.entry("topP", "--top-p"), Map.entry("topK", "--top-k"));

    static Options options(EngineOptions engine) {
        try {
            return engine.toOptions();
        } catch (IllegalArgumentException e) {
            throw new UsageError(flagged(e.getMessage()));
        }
    }

    /** "options: learningRate must be ..." -> "--lr must be ...". */
    static String flagged(String message) {
        String m = message.startsWith("options: ") ? message.substring("options: ".length()) : message;
        for (Map.Entry<String, String> e : FLAGS.entrySet()) {
            if (m.startsWith(e.getKey() + " ")) return e.getValue() + m.substring(e.getKey().length());
        }
        return message;
    }
}
