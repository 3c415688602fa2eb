package dev.relat.engine;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * Every option of one solve, with the ReLAT paper's settings as defaults (LoRA rank 8, 5 update
 * steps, latent length 16, learning rate 2e-5). Validated on construction; each message names the
 * option. Build one with {@link #builder()} (the defaults) or {@link #toBuilder()}.
 *
 * @param method the method to run (default {@link Method#RELAT})
 * @param latentSteps K, the latent vectors of the thought; unused by {@link Method#SINGLE}
 *     (default 16)
 * @param latentMode how a latent step turns the last hidden state into the next input embedding
 *     (default {@link LatentMode#SOFT}; for the multi-agent methods {@link LatentMode#REALIGN},
 *     LatentMAS's rule: the builder picks it when no mode is set)
 * @param temperatureLatent tau, the softmax temperature of the {@link LatentMode#SOFT} step
 *     (default 1.0)
 * @param updateSteps N, the AdamW updates of the question's LoRA adapter; the loss is also
 *     measured once after the last, so a training method reports N + 1 losses (default 5)
 * @param learningRate AdamW's learning rate (default 2e-5)
 * @param loraRank r, the rank of every adapted projection's A [r, in] and B [out, r] (default 8)
 * @param loraAlpha the adapter's scale is alpha / r ({@link #loraScale()}; default 16)
 * @param loraTargets the projections adapted, in every layer (default all seven)
 * @param adamBeta1 AdamW's first-moment decay (default 0.9)
 * @param adamBeta2 AdamW's second-moment decay (default 0.999)
 * @param adamEps AdamW's epsilon (default 1e-8)
 * @param weightDecay AdamW's decoupled weight decay (default 0)
 * @param realignLambda the ridge lambda of the {@link LatentMode#REALIGN} matrix W_a (default
 *     1e-5)
 * @param thinking the chat template's enable_thinking (Qwen3's thinking mode; default true)
 * @param systemPrompt the system message; null for none (default {@link #DEFAULT_SYSTEM_PROMPT})
 * @param reconstructionInstruction the text after the latent thought in the reconstruction
 *     prompt's user turn; "" for none (default {@link #DEFAULT_INSTRUCTION})
 * @param answerContext what the answer is decoded after (default {@link AnswerContext#LATENTS});
 *     unused by the multi-agent methods, whose judger answers after the whole working memory
 * @param maxNewTokens the answer's token limit, the stop token not counted (default 1024)
 * @param maxContext the positions one question may use (prompt, latent thought, answer); 0: the
 *     model's max_position_embeddings, which also caps a larger value (default 0)
 * @param temperature the answer's sampling temperature; 0: greedy (default 0)
 * @param topP the answer's nucleus (top-p) mass; 1.0: no limit (default 1.0)
 * @param topK the answer's top-k; 0: no limit (default 0)
 * @param seed seeds the LoRA initialisation and the answer's sampling: the same seed gives the
 *     same adapter on every device (default 0)
 * @param agents the team of the multi-agent methods, in order (default {@link Agents#defaults()}:
 *     planner, critic, refiner, judger); each agent but the last appends latentSteps latent steps
 *     to the working memory; unused by the single-agent methods
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
        long seed,
        Agents agents) {

    /** Projections LoRA can adapt (in: the projection's input width, out: its output width). */
    public enum Target {
        /** q_proj: hidden to heads * head_dim. */
        Q,
        /** k_proj: hidden to kv heads * head_dim. */
        K,
        /** v_proj: hidden to kv heads * head_dim. */
        V,
        /** o_proj: heads * head_dim to hidden. */
        O,
        /** mlp.gate_proj: hidden to intermediate. */
        GATE,
        /** mlp.up_proj: hidden to intermediate. */
        UP,
        /** mlp.down_proj: intermediate to hidden. */
        DOWN;

        /**
         * Parses a target as the command line writes it: q, k_proj, GATE, ...
         *
         * @param name the projection's name, any case, with or without "_proj"
         * @return the target
         * @throws IllegalArgumentException naming the unknown target
         */
        public static Target parse(String name) {
            try {
                return valueOf(name.strip().toUpperCase(Locale.ROOT).replace("_PROJ", ""));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown LoRA target '" + name + "' (expected q, k, v, o, gate, up, down)");
            }
        }
    }

    /** The default system message: asks for step-by-step reasoning and a {@code \boxed{}} answer. */
    public static final String DEFAULT_SYSTEM_PROMPT =
            "You are a helpful assistant. Reason step by step and put your final answer within \\boxed{}.";
    /** The default reconstruction instruction. */
    public static final String DEFAULT_INSTRUCTION = "Restate the original question exactly.";

    /**
     * Checks every option; a violation throws IllegalArgumentException with a message naming the
     * option and the value. loraTargets is copied.
     *
     * @param method not null
     * @param latentSteps in [1, 4096], also for a method that does not use it
     * @param latentMode not null
     * @param temperatureLatent finite and greater than 0
     * @param updateSteps in [0, 1000]
     * @param learningRate in [0, 1e30)
     * @param loraRank in [1, 1024]
     * @param loraAlpha finite and greater than 0
     * @param loraTargets at least one
     * @param adamBeta1 in [0, 1)
     * @param adamBeta2 in [0, 1)
     * @param adamEps greater than 0
     * @param weightDecay 0 or more
     * @param realignLambda 0 or more
     * @param thinking any
     * @param systemPrompt any, null included
     * @param reconstructionInstruction not null (may be empty)
     * @param answerContext not null
     * @param maxNewTokens 0 or more
     * @param maxContext 0 or more
     * @param temperature finite, 0 or more
     * @param topP in (0, 1]
     * @param topK 0 or more
     * @param seed any
     * @param agents not null
     * @throws IllegalArgumentException naming the first option out of range
     */
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
        require(agents != null, "agents must be set");
        loraTargets = Set.copyOf(loraTargets);
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException("options: " + message);
    }

    /**
     * The paper's settings: {@code builder().build()}.
     *
     * @return the default options
     */
    public static Options defaults() {
        return builder().build();
    }

    /**
     * A builder holding the defaults.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * A builder holding these options, to change a few of them.
     *
     * @return a new builder
     */
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
        b.agents = agents;
        return b;
    }

    /**
     * The LoRA scale s in y = x W^T + s (x A^T) B^T.
     *
     * @return loraAlpha / loraRank
     */
    public double loraScale() {
        return loraAlpha / loraRank;
    }

    /**
     * Options one setting at a time; {@link #build} validates them all. Each setter sets the
     * record component of the same name (see {@link Options} for meanings and defaults).
     */
    public static final class Builder {
        private Method method = Method.RELAT;
        private int latentSteps = 16;
        private LatentMode latentMode;  // null: the method's default
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
        private Agents agents = Agents.defaults();

        /**
         * @param v {@link Options#method()}
         * @return this builder
         */
        public Builder method(Method v) { method = v; return this; }
        /**
         * @param v {@link Options#latentSteps()}
         * @return this builder
         */
        public Builder latentSteps(int v) { latentSteps = v; return this; }
        /**
         * @param v {@link Options#latentMode()}; null for the method's default (soft; realign for
         *     the multi-agent methods)
         * @return this builder
         */
        public Builder latentMode(LatentMode v) { latentMode = v; return this; }
        /**
         * @param v {@link Options#temperatureLatent()}
         * @return this builder
         */
        public Builder temperatureLatent(double v) { temperatureLatent = v; return this; }
        /**
         * @param v {@link Options#updateSteps()}
         * @return this builder
         */
        public Builder updateSteps(int v) { updateSteps = v; return this; }
        /**
         * @param v {@link Options#learningRate()}
         * @return this builder
         */
        public Builder learningRate(double v) { learningRate = v; return this; }
        /**
         * @param v {@link Options#loraRank()}
         * @return this builder
         */
        public Builder loraRank(int v) { loraRank = v; return this; }
        /**
         * @param v {@link Options#loraAlpha()}
         * @return this builder
         */
        public Builder loraAlpha(double v) { loraAlpha = v; return this; }
        /**
         * @param v {@link Options#loraTargets()}
         * @return this builder
         */
        public Builder loraTargets(Set<Target> v) { loraTargets = v; return this; }
        /**
         * @param b1 {@link Options#adamBeta1()}
         * @param b2 {@link Options#adamBeta2()}
         * @return this builder
         */
        public Builder adamBetas(double b1, double b2) { adamBeta1 = b1; adamBeta2 = b2; return this; }
        /**
         * @param v {@link Options#adamEps()}
         * @return this builder
         */
        public Builder adamEps(double v) { adamEps = v; return this; }
        /**
         * @param v {@link Options#weightDecay()}
         * @return this builder
         */
        public Builder weightDecay(double v) { weightDecay = v; return this; }
        /**
         * @param v {@link Options#realignLambda()}
         * @return this builder
         */
        public Builder realignLambda(double v) { realignLambda = v; return this; }
        /**
         * @param v {@link Options#thinking()}
         * @return this builder
         */
        public Builder thinking(boolean v) { thinking = v; return this; }
        /**
         * @param v {@link Options#systemPrompt()}
         * @return this builder
         */
        public Builder systemPrompt(String v) { systemPrompt = v; return this; }
        /**
         * @param v {@link Options#reconstructionInstruction()}
         * @return this builder
         */
        public Builder reconstructionInstruction(String v) { reconstructionInstruction = v; return this; }
        /**
         * @param v {@link Options#answerContext()}
         * @return this builder
         */
        public Builder answerContext(AnswerContext v) { answerContext = v; return this; }
        /**
         * @param v {@link Options#maxNewTokens()}
         * @return this builder
         */
        public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
        /**
         * @param v {@link Options#maxContext()}
         * @return this builder
         */
        public Builder maxContext(int v) { maxContext = v; return this; }
        /**
         * @param v {@link Options#temperature()}
         * @return this builder
         */
        public Builder temperature(double v) { temperature = v; return this; }
        /**
         * @param v {@link Options#topP()}
         * @return this builder
         */
        public Builder topP(double v) { topP = v; return this; }
        /**
         * @param v {@link Options#topK()}
         * @return this builder
         */
        public Builder topK(int v) { topK = v; return this; }
        /**
         * @param v {@link Options#seed()}
         * @return this builder
         */
        public Builder seed(long v) { seed = v; return this; }
        /**
         * @param v {@link Options#agents()}
         * @return this builder
         */
        public Builder agents(Agents v) { agents = v; return this; }

        /**
         * The options as set.
         *
         * @return the validated options
         * @throws IllegalArgumentException naming the first option out of range
         */
        public Options build() {
            LatentMode mode = latentMode != null ? latentMode
                    : method != null && method.multiAgent() ? LatentMode.REALIGN : LatentMode.SOFT;
            return new Options(method, latentSteps, mode, temperatureLatent, updateSteps, learningRate, loraRank,
                    loraAlpha, loraTargets, adamBeta1, adamBeta2, adamEps, weightDecay, realignLambda, thinking,
                    systemPrompt, reconstructionInstruction, answerContext, maxNewTokens, maxContext, temperature, topP, topK,
                    seed, agents);
        }
    }
}
