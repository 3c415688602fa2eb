package dev.relat.cli;

import com.google.gson.JsonObject;
import dev.relat.IoErrors;
import dev.relat.engine.Options;
import dev.relat.engine.Phase;
import dev.relat.engine.PhaseListener;
import dev.relat.engine.Result;
import dev.relat.model.QwenConfig;
import dev.relat.profile.Nvtx;
import dev.relat.profile.PhaseProfiler;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code relat solve}: one question, one method; prints the answer, the losses, token counts, phase times. */
@Command(name = "solve", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        defaultValueProvider = EngineOptions.Defaults.class,
        description = {"Answers one question with one method (default relat) and prints the answer, the test-time-training"
                + " loss per update step, token counts and phase timings.",
            "Several questions (--question, repeated, or --questions FILE) are solved together in one batched pass,"
                + " each with its own adapter, and printed one after another (--json: one object per line).",
            "Without --model it runs the embedded demo model, whose weights are random: its answers are noise, it shows"
                + " the mechanics only."})
class SolveCommand implements Callable<Integer> {
    @ParentCommand
    Main parent;

    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions model;

    @Mixin
    EngineOptions engine;

    @Option(names = "--json", description = "print one JSON object instead of text")
    boolean json;

    @Option(names = "--profile", description = "NVTX ranges per phase and cudaProfilerStart/Stop around the question"
            + " (for nsys / ncu); prints the phase breakdown table")
    boolean profile;

    @Parameters(paramLabel = "QUESTION", arity = "0..*", description = "the question (several words are joined by spaces)")
    List<String> question;

    @Option(names = "--question", paramLabel = "TEXT", description = "a question; repeat for several, solved together")
    List<String> questionOptions;

    @Option(names = "--questions", paramLabel = "FILE", description = "questions to solve together, one per line"
            + " (UTF-8; blank lines skipped)")
    Path questionsFile;

    /** relat profile: always on. */
    boolean profiling() {
        return profile;
    }

    @Override
    public Integer call() {
        Context ctx = parent.context;
        Options options = Commands.options(engine);
        boolean demo = model.demo();
        if (demo && !spec.commandLine().getParseResult().hasMatchedOption("--max-new-tokens")) {
            options = options.toBuilder().maxNewTokens(DemoModel.DEFAULT_MAX_NEW_TOKENS).build();
        }
        Device device = model.torchDevice();
        ScalarType dtype = model.scalarType();
        List<String> texts = questions();

        if (demo) ctx.err().println("relat: note: " + DemoModel.NOTICE);
        Path dir = demo ? DemoModel.ensure(ctx.cacheRoot()) : model.checkout();
        long t0 = System.nanoTime();
        try (SolveEngine solver = ctx.engines().open(dir, device, dtype)) {
            long loadNanos = System.nanoTime() - t0;
            PhaseProfiler profiler = profiling() ? new PhaseProfiler() : null;
            PhaseListener listener = profiler != null ? profiler : PhaseListener.NONE;
            long s0 = System.nanoTime();
            List<Result> results = texts.size() == 1 ? List.of(solver.solve(texts.get(0), options, listener))
                    : solver.solveAll(texts, options, listener);
            long wallNanos = System.nanoTime() - s0;
            for (int i = 0; i < texts.size(); i++) {
                Run run = new Run(dir, demo, device.str().getString(), ModelOptions.name(dtype), solver.config(),
                        texts.get(i), options, results.get(i), loadNanos, wallNanos, profiler);
                if (json) {
                    ctx.out().println(json(run));
                } else {
                    if (texts.size() > 1) {
                        ctx.out().printf("%s== question %d of %d (solved together: the phase times, wall time and"
                                + " memory are the batch's) ==%n", i > 0 ? "\n" : "", i + 1, texts.size());
                    }
                    print(ctx.out(), run);
                }
            }
        }
        return 0;
    }

    /** The positional question (its words joined), or the --question / --questions ones. */
    private List<String> questions() {
        boolean positional = question != null && !question.isEmpty();
        List<String> listed = new ArrayList<>();
        if (questionOptions != null) listed.addAll(questionOptions);
        if (questionsFile != null) {
            try {
                for (String line : Files.readAllLines(questionsFile, StandardCharsets.UTF_8)) {
                    if (!line.isBlank()) listed.add(line.strip());
                }
            } catch (IOException e) {
                throw new UsageError("--questions " + questionsFile + ": " + IoErrors.describe(e));
            }
            if (listed.isEmpty()) throw new UsageError("--questions " + questionsFile + ": no question in it");
        }
        if (positional && !listed.isEmpty()) {
            throw new UsageError("give the question as arguments or with --question / --questions, not both");
        }
        if (!positional && listed.isEmpty()) throw new UsageError("missing the question (QUESTION, --question or --questions)");
        if (positional) {
            String text = String.join(" ", question);
            if (text.isBlank()) throw new UsageError("the question is empty");
            return List.of(text);
        }
        for (int i = 0; i < listed.size(); i++) {
            if (listed.get(i).isBlank()) throw new UsageError("question " + (i + 1) + " is empty");
        }
        return listed;
    }

    /** Everything one solve printed. */
    record Run(Path model, boolean demo, String device, String dtype, QwenConfig config, String question,
            Options options, Result result, long loadNanos, long wallNanos, PhaseProfiler profiler) {}

    static JsonObject json(Run run) {
        JsonObject o = new JsonObject();
        o.addProperty("model", run.model().toString());
        o.addProperty("demo", run.demo());
        if (run.demo()) o.addProperty("notice", DemoModel.NOTICE);
        o.addProperty("device", run.device());
        o.addProperty("dtype", run.dtype());
        o.addProperty("question", run.question());
        o.add("options", ResultJson.of(run.options()));
        o.add("result", ResultJson.of(run.result()));
        o.addProperty("loadNanos", run.loadNanos());
        o.addProperty("wallNanos", run.wallNanos());
        if (run.profiler() != null) {
            JsonObject p = new JsonObject();
            for (Phase phase : Phase.values()) {
                JsonObject s = new JsonObject();
                s.addProperty("calls", run.profiler().calls(phase));
                s.addProperty("nanos", run.profiler().nanos(phase));
                p.add(ResultJson.key(phase), s);
            }
            p.addProperty("questionNanos", run.profiler().questionNanos());
            p.addProperty("nvtx", Nvtx.active());
            o.add("profile", p);
        }
        return o;
    }

    /** Control characters as \\xNN, so no text can drive the terminal; tabs stay. */
    static String printable(String text) {
        StringBuilder b = new StringBuilder(text.length());
        text.codePoints().forEach(c -> {
            if (Character.getType(c) == Character.CONTROL && c != '\t') {
                b.append(String.format("\\x%02x", c));  // every CONTROL code point is below 0x100
            } else {
                b.appendCodePoint(c);
            }
        });
        return b.toString();
    }

    static void print(PrintStream out, Run run) {
        Options o = run.options();
        Result r = run.result();
        QwenConfig c = run.config();
        out.printf("model     %s%s%n", run.demo() ? "embedded demo (random weights) " : "", run.model());
        if (c != null) {
            out.printf("          %s, %d layers, hidden %d, %d/%d heads, vocab %d, %.1f M parameters%n", c.modelType(),
                    c.numHiddenLayers(), c.hiddenSize(), c.numAttentionHeads(), c.numKeyValueHeads(), c.vocabSize(),
                    c.parameterCount() / 1e6);
        }
        out.printf("          on %s in %s, loaded in %.1f s%n", run.device(), run.dtype(), run.loadNanos() / 1e9);
        out.printf("method    %s%s%n", o.method().cliName(), describe(o));
        out.printf("question  %s%n", printable(run.question()));
        out.println("answer");
        for (String line : r.answer().split("\n", -1)) out.println("  " + printable(line));
        out.printf("tokens    prompt %d, latent %d, answer %d%n", r.promptTokens(), r.latentTokens(), r.answerTokens());
        for (Result.AgentRun a : r.agents()) {
            long nanos = a.phaseNanos().values().stream().mapToLong(Long::longValue).sum();
            out.printf(Locale.ROOT, "  agent %-10s prompt %d, latent %d, decoded %d, %.1f ms%n", a.role(),
                    a.promptTokens(), a.latentSteps(), a.decodedTokens(), nanos / 1e6);
        }
        List<Double> losses = r.losses();
        if (losses.isEmpty()) {
            out.println("loss      none (" + o.method().cliName() + " does not train at test time)");
        } else {
            out.println("loss      " + (o.method().cliName().equals("query-lm") ? "next-token loss on the question"
                    : "reconstruction loss") + " before each update, then after the last:");
            for (int i = 0; i < losses.size(); i++) {
                boolean last = i == losses.size() - 1 && losses.size() > 1;
                out.printf("  step %-3d %.6f%s%n", i, losses.get(i), last ? "   (after the last update)" : "");
            }
        }
        if (run.profiler() != null) {
            out.println("profile   phase breakdown (wall time; NVTX " + (Nvtx.active()
                    ? "ranges and cudaProfilerStart/Stop sent to librelat_cuda)" : "calls are no-ops: CUDA not loaded)"));
            for (String line : run.profiler().table().split("\n")) out.println("  " + line);
        } else {
            out.println("phases    wall time per phase, summed over the question:");
            long sum = 0;
            for (Phase p : Phase.values()) {
                long n = r.phaseNanos().getOrDefault(p, 0L);
                sum += n;
                out.printf("  %-24s %10.1f ms%n", p.label(), n / 1e6);
            }
            out.printf("  %-24s %10.1f ms (solve wall time %.1f ms)%n", "sum", sum / 1e6, run.wallNanos() / 1e6);
        }
        out.printf("memory    peak on the device: %s%n", bytes(r.peakDeviceBytes()));
    }

    static String describe(Options o) {
        StringBuilder sb = new StringBuilder();
        if (o.method().thinksInLatents()) {
            sb.append(String.format(Locale.ROOT, ": K=%d latent steps%s (%s, tau %s)", o.latentSteps(),
                    o.method().multiAgent() ? " per agent" : "", o.latentMode().name().toLowerCase(Locale.ROOT),
                    o.temperatureLatent()));
        }
        if (o.method().trains()) {
            sb.append(String.format(Locale.ROOT, ", N=%d updates, lr %s, LoRA rank %d alpha %s on %s", o.updateSteps(),
                    o.learningRate(), o.loraRank(), o.loraAlpha(), o.loraTargets().stream().sorted()
                            .map(t -> t.name().toLowerCase(Locale.ROOT)).collect(Collectors.joining(","))));
        }
        if (o.method().multiAgent()) {
            sb.append(sb.length() == 0 ? ": " : ", ").append("agents ").append(o.agents().agents().stream()
                    .map(a -> a.role()).collect(Collectors.joining(" > ")));
        }
        sb.append(sb.length() > 0 ? ", " : ": ");
        sb.append(o.temperature() == 0 ? "greedy" : String.format(Locale.ROOT, "temperature %s top-p %s top-k %d seed %d",
                o.temperature(), o.topP(), o.topK(), o.seed()));
        sb.append(", at most ").append(o.maxNewTokens()).append(" answer tokens");
        sb.append(o.thinking() ? ", thinking on" : ", thinking off");
        return sb.toString();
    }

    static String bytes(long b) {
        if (b <= 0) return b == 0 ? "0 (not measured on this device)" : "unknown";
        if (b < 1L << 20) return String.format("%.1f KiB", b / 1024.0);
        if (b < 1L << 30) return String.format("%.1f MiB", b / (double) (1L << 20));
        return String.format("%.2f GiB", b / (double) (1L << 30));
    }
}
