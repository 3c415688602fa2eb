package dev.relat.cli;

import dev.relat.engine.Agents;
import dev.relat.engine.AnswerContext;
import dev.relat.engine.LatentMode;
import dev.relat.engine.Method;
import dev.relat.engine.Options;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;
import picocli.CommandLine.IDefaultValueProvider;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

/**
 * The options of one solve, one command-line option per {@link Options.Builder} setter. Defaults
 * (shown by --help) come from {@link Options#defaults()} through {@link Defaults}, so they cannot
 * drift from the engine's. Validation is the engine's: {@link #toOptions()} throws its
 * IllegalArgumentException, which the command line prints as one line with exit code 2.
 */
public final class EngineOptions {
    @Option(names = {"-m", "--method"}, paramLabel = "METHOD",
            description = "single, latent, relat, query-lm, latent-mas, text-mas or relat-mas"
                    + " (default: ${DEFAULT-VALUE})")
    Method method;

    @Option(names = {"-K", "--latent-steps"}, paramLabel = "K",
            description = "latent thought length, in steps (default: ${DEFAULT-VALUE})")
    int latentSteps;

    @Option(names = "--latent-mode", paramLabel = "MODE",
            description = "soft, realign or identity (default: soft; realign for latent-mas, text-mas, relat-mas)")
    LatentMode latentMode;

    @Option(names = "--tau", paramLabel = "TAU",
            description = "softmax temperature of the soft latent step (default: ${DEFAULT-VALUE})")
    double tau;

    @Option(names = {"-N", "--update-steps"}, paramLabel = "N",
            description = "test-time LoRA update steps (default: ${DEFAULT-VALUE})")
    int updateSteps;

    @Option(names = "--lr", paramLabel = "LR", description = "AdamW learning rate (default: ${DEFAULT-VALUE})")
    double learningRate;

    @Option(names = "--rank", paramLabel = "R", description = "LoRA rank (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--alpha", paramLabel = "A", description = "LoRA alpha; scale = alpha / rank (default: ${DEFAULT-VALUE})")
    double alpha;

    @Option(names = "--targets", paramLabel = "P", split = ",",
            description = "projections LoRA adapts, comma-separated from q,k,v,o,gate,up,down (default: ${DEFAULT-VALUE})")
    List<Options.Target> targets;

    @Option(names = "--adam-beta1", paramLabel = "B1", description = "(default: ${DEFAULT-VALUE})")
    double adamBeta1;

    @Option(names = "--adam-beta2", paramLabel = "B2", description = "(default: ${DEFAULT-VALUE})")
    double adamBeta2;

    @Option(names = "--adam-eps", paramLabel = "EPS", description = "(default: ${DEFAULT-VALUE})")
    double adamEps;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "AdamW weight decay (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--realign-lambda", paramLabel = "L",
            description = "ridge term of the realign matrix (default: ${DEFAULT-VALUE})")
    double realignLambda;

    @Option(names = "--thinking", negatable = true, fallbackValue = "true",
            description = "Qwen3 thinking mode in the chat template; --no-thinking turns it off (default: ${DEFAULT-VALUE})")
    boolean thinking;

    @Option(names = "--answer-context", paramLabel = "C",
            description = "what the answer is decoded after: latents ([prompt | latent thought]) or question (default: ${DEFAULT-VALUE})")
    AnswerContext answerContext;

    @Option(names = "--max-new-tokens", paramLabel = "T",
            description = "answer token limit (default: ${DEFAULT-VALUE}; " + DemoModel.DEFAULT_MAX_NEW_TOKENS
                    + " for solve on the demo model)")
    int maxNewTokens;

    @Option(names = "--max-context", paramLabel = "N",
            description = "positions one question may use (prompt + latent thought + answer), checked before any"
                    + " work; 0 = the model's max_position_embeddings, which also caps larger values"
                    + " (default: ${DEFAULT-VALUE})")
    int maxContext;

    @Option(names = "--temperature", paramLabel = "T", description = "sampling temperature, 0 = greedy (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-p", paramLabel = "P", description = "nucleus sampling mass (default: ${DEFAULT-VALUE})")
    double topP;

    @Option(names = "--top-k", paramLabel = "K", description = "keep the K most likely tokens, 0 = off (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--seed", paramLabel = "S", description = "sampling and LoRA initialisation seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--system-prompt", paramLabel = "TEXT",
            description = "system message; an empty string sends none (default: \"${DEFAULT-VALUE}\")")
    String systemPrompt;

    @Option(names = "--instruction", paramLabel = "TEXT",
            description = "reconstruction instruction placed after the latent thought (default: \"${DEFAULT-VALUE}\")")
    String instruction;

    @Option(names = "--agents", paramLabel = "FILE",
            description = "latent-mas, text-mas, relat-mas: the agents, in order, as JSON {\"agents\": [{\"role\": ...,"
                    + " \"prompt\": ...}, ...]}; the last one answers (default: the built-in planner, critic,"
                    + " refiner, judger)")
    Path agentsFile;

    /** --agents, or the built-in team; a bad file is an IllegalArgumentException naming the flag and the file. */
    private Agents agents() {
        if (agentsFile == null) return Agents.defaults();
        try {
            return Agents.read(agentsFile);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--agents: " + e.getMessage(), e);
        }
    }

    /**
     * Whether --latent-mode was left out: each method then runs its own default (see
     * {@link Options.Builder#latentMode}).
     */
    boolean latentModeDefault() {
        return latentMode == null;
    }

    /** The engine options; throws the engine's IllegalArgumentException when a value is invalid. */
    public Options toOptions() {
        if (targets == null || targets.isEmpty()) {
            throw new IllegalArgumentException("options: --targets must name at least one projection");
        }
        return Options.builder()
                .method(method)
                .latentSteps(latentSteps)
                .latentMode(latentMode)
                .temperatureLatent(tau)
                .updateSteps(updateSteps)
                .learningRate(learningRate)
                .loraRank(rank)
                .loraAlpha(alpha)
                .loraTargets(EnumSet.copyOf(targets))
                .adamBetas(adamBeta1, adamBeta2)
                .adamEps(adamEps)
                .weightDecay(weightDecay)
                .realignLambda(realignLambda)
                .thinking(thinking)
                .systemPrompt(systemPrompt == null || systemPrompt.isEmpty() ? null : systemPrompt)
                .reconstructionInstruction(instruction)
                .answerContext(answerContext)
                .maxNewTokens(maxNewTokens)
                .maxContext(maxContext)
                .temperature(temperature)
                .topP(topP)
                .topK(topK)
                .seed(seed)
                .agents(agents())
                .build();
    }

    /** Shows and applies {@link Options#defaults()} for every option above that is not given. */
    public static final class Defaults implements IDefaultValueProvider {
        private static final Map<String, String> VALUES = values(Options.defaults());

        static Map<String, String> values(Options d) {
            return Map.ofEntries(
                    Map.entry("--method", d.method().cliName()),
                    Map.entry("--latent-steps", Integer.toString(d.latentSteps())),
                    Map.entry("--tau", Double.toString(d.temperatureLatent())),
                    Map.entry("--update-steps", Integer.toString(d.updateSteps())),
                    Map.entry("--lr", Double.toString(d.learningRate())),
                    Map.entry("--rank", Integer.toString(d.loraRank())),
                    Map.entry("--alpha", Double.toString(d.loraAlpha())),
                    Map.entry("--targets", EnumSet.copyOf(d.loraTargets()).stream().map(Defaults::lower)
                            .collect(Collectors.joining(","))),
                    Map.entry("--adam-beta1", Double.toString(d.adamBeta1())),
                    Map.entry("--adam-beta2", Double.toString(d.adamBeta2())),
                    Map.entry("--adam-eps", Double.toString(d.adamEps())),
                    Map.entry("--weight-decay", Double.toString(d.weightDecay())),
                    Map.entry("--realign-lambda", Double.toString(d.realignLambda())),
                    Map.entry("--thinking", Boolean.toString(d.thinking())),
                    Map.entry("--answer-context", lower(d.answerContext())),
                    Map.entry("--max-new-tokens", Integer.toString(d.maxNewTokens())),
                    Map.entry("--max-context", Integer.toString(d.maxContext())),
                    Map.entry("--temperature", Double.toString(d.temperature())),
                    Map.entry("--top-p", Double.toString(d.topP())),
                    Map.entry("--top-k", Integer.toString(d.topK())),
                    Map.entry("--seed", Long.toString(d.seed())),
                    Map.entry("--system-prompt", d.systemPrompt() == null ? "" : d.systemPrompt()),
                    Map.entry("--instruction", d.reconstructionInstruction()));
        }

        private static String lower(Enum<?> e) {
            return e.name().toLowerCase(Locale.ROOT);
        }

        @Override
        public String defaultValue(ArgSpec arg) {
            return arg instanceof OptionSpec o ? VALUES.get(o.longestName()) : null;
        }
    }
}
