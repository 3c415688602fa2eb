package dev.relat.engine;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * Every option of one solve, with the ReLAT paper's settings as defaults (LoRA rank 8, 5 update
 * steps, latent length 16, learning rate 2e-5). Validated on construction; each message names the
 * option.
 */
public record Options(
        Method method,
        int latentSteps,
        LatentMode latentMode,
        double temperatureLatent,
        int updateSteps,
        double learningRate,
        int loraRank,
        double loraAlpha,
        Set<Target> loraTargets,
        double adamBeta1,
        double adamBeta2,
        double adamEps,
        double weightDecay,
        double realignLambda,
        boolean thinking,
        String systemPrompt,
        String reconstructionInstruction,
        AnswerContext answerContext,
        int maxNewTokens,
        int maxContext,
        double temperature,
        double topP,
        int topK,
        long seed) {

    /** Projections LoRA can adapt. */
    public enum Target {
        Q, K, V, O, GATE, UP, DOWN;

        public static Target parse(String name) {
            try {
                return valueOf(name.strip().toUpperCase(Locale.ROOT).replace("_PROJ", ""));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown LoRA target '" + name + "' (expected q, k, v, o, gate, up, down)");
            }
        }
    }

    public static final String DEFAULT_SYSTEM_PROMPT =
            "You are a helpful assistant. Reason step by step and put your final answer within \\boxed{}.";
    public static final String DEFAULT_INSTRUCTION = "Restate the original question exactly.";

    public Options {
        require(method != null, "method must be set");
        require(latentMode != null, "latentMode must be set");
        require(answerContext != null, "answerContext must be set");
        require(latentSteps >= 1 && latentSteps <= 4096, "latentSteps must be in [1, 4096], got " + latentSteps);
        require(temperatureLatent > 0 && Double.isFinite(temperatureLatent),
                "temperatureLatent (tau) must be > 0, got " + temperatureLatent);
        require(updateSteps >= 0 && updateSteps <= 1000, "updateSteps must be in [0, 1000], got " + updateSteps);
        require(learningRate >= 0 && learningRate < 1e30, "learningRate must be in [0, 1e30), got " + learningRate);
        require(loraRank >= 1 && loraRank <= 1024, "loraRank must be in [1, 1024], got " + loraRank);
        require(loraAlpha > 0 && Double.isFinite(loraAlpha), "loraAlpha must be > 0, got " + loraAlpha);
        require(loraTargets != null && !loraTargets.isEmpty(), "loraTargets must name at least one projection");
        require(adamBeta1 >= 0 && adamBeta1 < 1, "adamBeta1 must be in [0, 1), got " + adamBeta1);
        require(adamBeta2 >= 0 && adamBeta2 < 1, "adamBeta2 must be in [0, 1), got " + adamBeta2);
        require(adamEps > 0, "adamEps must be > 0, got " + adamEps);
        require(weightDecay >= 0, "weightDecay must be >= 0, got " + weightDecay);
        require(realignLambda >= 0, "realignLambda must be >= 0, got " + realignLambda);
        require(reconstructionInstruction != null, "reconstructionInstruction must be set");
        require(maxNewTokens >= 0, "maxNewTokens must be >= 0, got " + maxNewTokens);
        require(maxContext >= 0, "maxContext must be >= 0 (0 = the model's max_position_embeddings), got " + maxContext);
        require(temperature >= 0 && Double.isFinite(temperature), "temperature must be >= 0 (0 = greedy), got " + temperature);
        require(topP > 0 && topP <= 1, "topP must be in (0, 1], got " + topP);
        require(topK >= 0, "topK must be >= 0 (0 = off), got " + topK);
        loraTargets = Set.copyOf(loraTargets);
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException("options: " + message);
    }

    public static Options defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.method = method;
        b.latentSteps = latentSteps;
        b.latentMode = latentMode;
        b.temperatureLatent = temperatureLatent;
        b.updateSteps = updateSteps;
        b.learningRate = learningRate;
        b.loraRank = loraRank;
        b.loraAlpha = loraAlpha;
        b.loraTargets = EnumSet.copyOf(loraTargets);
        b.adamBeta1 = adamBeta1;
        b.adamBeta2 = adamBeta2;
        b.adamEps = adamEps;
        b.weightDecay = weightDecay;
        b.realignLambda = realignLambda;
        b.thinking = thinking;
        b.systemPrompt = systemPrompt;
        b.reconstructionInstruction = reconstructionInstruction;
        b.answerContext = answerContext;
        b.maxNewTokens = maxNewTokens;
        b.maxContext = maxContext;
        b.temperature = temperature;
        b.topP = topP;
        b.topK = topK;
        b.seed = seed;
        return b;
    }

    /** LoRA scale alpha / rank. */
    public double loraScale() {
        return loraAlpha / loraRank;
    }

    public static final class Builder {
        private Method method = Method.RELAT;
        private int latentSteps = 16;
        private LatentMode latentMode = LatentMode.SOFT;
        private double temperatureLatent = 1.0;
        private int updateSteps = 5;
        private double learningRate = 2e-5;
        private int loraRank = 8;
        private double loraAlpha = 16;
        private Set<Target> loraTargets = EnumSet.allOf(Target.class);
        private double adamBeta1 = 0.9;
        private double adamBeta2 = 0.999;
        private double adamEps = 1e-8;
        private double weightDecay = 0;
        private double realignLambda = 1e-5;
        private boolean thinking = true;
        private String systemPrompt = DEFAULT_SYSTEM_PROMPT;
        private String reconstructionInstruction = DEFAULT_INSTRUCTION;
        private AnswerContext answerContext = AnswerContext.LATENTS;
        private int maxNewTokens = 1024;
        private int maxContext = 0;
        private double temperature = 0;
        private double topP = 1.0;
        private int topK = 0;
        private long seed = 0;

        public Builder method(Method v) { method = v; return this; }
        public Builder latentSteps(int v) { latentSteps = v; return this; }
        public Builder latentMode(LatentMode v) { latentMode = v; return this; }
        public Builder temperatureLatent(double v) { temperatureLatent = v; return this; }
        public Builder updateSteps(int v) { updateSteps = v; return this; }
        public Builder learningRate(double v) { learningRate = v; return this; }
        public Builder loraRank(int v) { loraRank = v; return this; }
        public Builder loraAlpha(double v) { loraAlpha = v; return this; }
        public Builder loraTargets(Set<Target> v) { loraTargets = v; return this; }
        public Builder adamBetas(double b1, double b2) { adamBeta1 = b1; adamBeta2 = b2; return this; }
        public Builder adamEps(double v) { adamEps = v; return this; }
        public Builder weightDecay(double v) { weightDecay = v; return this; }
        public Builder realignLambda(double v) { realignLambda = v; return this; }
        public Builder thinking(boolean v) { thinking = v; return this; }
        /** Null: no system message. */
        public Builder systemPrompt(String v) { systemPrompt = v; return this; }
        public Builder reconstructionInstruction(String v) { reconstructionInstruction = v; return this; }
        public Builder answerContext(AnswerContext v) { answerContext = v; return this; }
        public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
        /** Positions a question may use; 0: the model's max_position_embeddings (a larger value is capped by it). */
        public Builder maxContext(int v) { maxContext = v; return this; }
        /** 0: greedy. */
        public Builder temperature(double v) { temperature = v; return this; }
        public Builder topP(double v) { topP = v; return this; }
        /** 0: off. */
        public Builder topK(int v) { topK = v; return this; }
        public Builder seed(long v) { seed = v; return this; }

        public Options build() {
            return new Options(method, latentSteps, latentMode, temperatureLatent, updateSteps, learningRate, loraRank,
                    loraAlpha, loraTargets, adamBeta1, adamBeta2, adamEps, weightDecay, realignLambda, thinking,
                    systemPrompt, reconstructionInstruction, answerContext, maxNewTokens, maxContext, temperature, topP, topK,
                    seed);
        }
    }
}
