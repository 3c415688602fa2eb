package dev.relat.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import dev.relat.IoErrors;
import dev.relat.engine.Method;
import dev.relat.engine.Options;
import dev.relat.engine.PhaseListener;
import dev.relat.engine.Result;
import dev.relat.eval.CodeEval;
import dev.relat.eval.CodeSandbox;
import dev.relat.eval.Dataset;
import dev.relat.eval.Evaluator;
import dev.relat.eval.MethodSummary;
import dev.relat.eval.Question;
import dev.relat.eval.Shard;
import dev.relat.eval.Shards;
import dev.relat.eval.Solver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code relat eval}: every method on every question of a JSON-lines benchmark; resumable. */
@Command(name = "eval", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        defaultValueProvider = EngineOptions.Defaults.class, subcommands = EvalMergeCommand.class,
        description = {"Runs each method on each question of a JSON-lines file and writes into --out: results.jsonl"
                + " (one line per question x method, with the full result record), summary.md (accuracy per method"
                + " with its 95%% Wilson interval, and a paired comparison of every two methods: wins, losses,"
                + " ties, exact McNemar p),"
                + " accuracy.png and loss.png (mean test-time-training loss per update step).",
            "Resumable: rerun with the same --out and finished lines are kept, not redone; results made with other"
                + " settings or for a changed question are refused (see --force-resume). Malformed input lines"
                + " (not UTF-8, not JSON, a missing field, a repeated id) are reported by line number and skipped. The engine options apply to every method; --method is"
                + " ignored (see --methods).",
            "On a cluster: one run per --shard I/N, then `relat eval merge DIR... --out DIR`."})
final class EvalCommand implements Callable<Integer> {
    @ParentCommand
    Main parent;

    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions model;

    // not required = true: picocli would then ask for it before `relat eval merge` too
    @Option(names = "--data", paramLabel = "FILE", description = "the benchmark, JSON lines (required)")
    Path data;

    @Option(names = "--methods", split = ",", paramLabel = "M", defaultValue = "single,latent,relat",
            description = "comma-separated methods from single, latent, relat, query-lm, latent-mas, text-mas,"
                    + " relat-mas (default: ${DEFAULT-VALUE})")
    List<Method> methods;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "gsm8k",
            description = "field names and answer kind: gsm8k (question/answer, numbers, '#### x' answers),"
                    + " aime or math (problem/answer, numbers), mc, gpqa or medqa (question/answer/options, letters),"
                    + " humaneval or mbpp (code run against the tests in a sandbox) (default: ${DEFAULT-VALUE})")
    String preset;

    @Option(names = "--question-field", paramLabel = "F", description = "JSON field of the question (overrides the preset)")
    String questionField;

    @Option(names = "--answer-field", paramLabel = "F", description = "JSON field of the reference answer (overrides the preset)")
    String answerField;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "0",
            description = "only the first N valid questions; 0 = all (default: ${DEFAULT-VALUE})")
    int limit;

    @Option(names = "--shard", paramLabel = "I/N", description = "only shard I of N (0 <= I < N): the questions"
            + " whose id hashes to I, the same ones however the file grows (after --limit); merge the N output"
            + " folders with `relat eval merge`")
    String shard;

    @Option(names = "--out", paramLabel = "DIR", description = "output folder (default: relat-eval-<data file name>)")
    Path out;

    @Option(names = "--force-resume", description = "redo the results in --out that were made with other settings"
            + " or for another text of their question (they move to results.dropped.jsonl); without it such a"
            + " folder is refused")
    boolean forceResume;

    @Option(names = "--exec-timeout", paramLabel = "SECONDS", defaultValue = "10",
            description = "humaneval, mbpp: wall-clock (and CPU-time) limit of each program run (default: ${DEFAULT-VALUE})")
    double execTimeout;

    @Option(names = "--allow-unsandboxed-exec", description = "humaneval, mbpp: run generated code even where no"
            + " network namespace can be made (then only rlimits, a process group and a temp dir isolate it)")
    boolean allowUnsandboxedExec;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1",
            description = "questions solved together per method, each with its own adapter (single, latent and relat"
                    + " are batched; the others run one by one); a method's pending questions are taken B at a time"
                    + " (default: ${DEFAULT-VALUE})")
    int batch;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() throws Exception {
        Context ctx = parent.context;
        if (limit < 0) throw new UsageError("--limit must be >= 0, got " + limit);
        if (batch < 1) throw new UsageError("--batch must be >= 1, got " + batch);
        if (data == null) throw new UsageError("missing required option '--data=FILE'");
        Shard part;
        try {
            part = shard == null ? null : Shard.parse(shard);
        } catch (IllegalArgumentException e) {
            throw new UsageError("--shard: " + e.getMessage());
        }
        if (!Files.isRegularFile(data)) throw new UsageError("--data " + data + ": " + IoErrors.notARegularFile(data));
        Dataset.Format format;
        try {
            format = Dataset.Format.preset(preset).withFields(questionField, answerField);
        } catch (IllegalArgumentException e) {
            throw new UsageError("--preset: " + e.getMessage());
        }
        List<String> methodNames = new ArrayList<>(new LinkedHashSet<>(methods.stream().map(Method::cliName).toList()));
        Options base = Commands.options(engine);
        boolean demo = model.demo();
        if (demo && !spec.commandLine().getParseResult().hasMatchedOption("--max-new-tokens")) {
            base = base.toBuilder().maxNewTokens(DemoModel.DEFAULT_MAX_NEW_TOKENS).build();
        }
        Device device = model.torchDevice();
        ScalarType dtype = model.scalarType();
        String name = data.getFileName().toString();
        Path outDir = out != null ? out : Path.of("relat-eval-" + name.replaceFirst("\\.jsonl?$", ""));

        checkOutputFolder(outDir);
        Dataset dataset = Dataset.read(data, format);
        if (dataset.questions().isEmpty()) {
            for (Dataset.Problem p : dataset.problems()) ctx.err().println("relat eval: skipping " + name + " " + p);
            throw new UsageError("--data " + data + ": no usable question (fields '" + format.questionField() + "' and '"
                    + format.answerField() + "'; see --preset, --question-field, --answer-field)");
        }
        CodeSandbox sandbox = null;
        if (CodeEval.needsSandbox(dataset)) {
            try {
                sandbox = CodeEval.open(execTimeout, allowUnsandboxedExec);
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage());
            } catch (CodeSandbox.Unavailable e) {
                throw new UsageError("--preset " + preset + ": " + e.getMessage());
            }
            if (sandbox.isolation() == CodeSandbox.Isolation.NONE) {
                ctx.err().println("relat eval: warning: --allow-unsandboxed-exec: generated code runs with network"
                        + " access and a writable filesystem");
            }
        }
        int runLimit = limit;
        try {
            if (part != null) {
                List<Question> all = dataset.questions();
                dataset = dataset.withQuestions(part.select(limit > 0 && limit < all.size() ? all.subList(0, limit) : all));
                runLimit = 0;
            }
            Shards.record(outDir, part, data, format, limit, methodNames, dataset.questions());
        } catch (Shards.Refused e) {
            throw new UsageError(e.getMessage());
        }
        if (demo) ctx.err().println("relat: note: " + DemoModel.NOTICE);
        Path dir = demo ? DemoModel.ensure(ctx.cacheRoot()) : model.checkout();
        Evaluator.Settings settings = new Evaluator.Settings(
                CodeEval.runInfo(runInfo(dir, demo, device, dtype, base, engine.latentModeDefault()), sandbox),
                forceResume);

        final Options options = base;
        try (SolveEngine solver = ctx.engines().open(dir, device, dtype)) {
            Solver adapter = new Solver() {
                @Override
                public Solver.Outcome solve(Question question, String method) {
                    return outcome(solver.solve(question.text(), optionsFor(method), PhaseListener.NONE));
                }

                @Override
                public List<Solver.Outcome> solveAll(List<Question> questions, String method) {
                    List<Solver.Outcome> outcomes = new ArrayList<>();
                    for (Result r : solver.solveAll(questions.stream().map(Question::text).toList(), optionsFor(method),
                            PhaseListener.NONE)) {
                        outcomes.add(outcome(r));
                    }
                    return outcomes;
                }

                private Options optionsFor(String method) {
                    Options.Builder b = options.toBuilder().method(Method.parse(method));
                    if (engine.latentModeDefault()) b.latentMode(null);  // each method's own default
                    return b.build();
                }

                private Solver.Outcome outcome(Result r) {
                    return new Solver.Outcome(r.answer(), r.losses(), ResultJson.of(r));
                }
            };
            List<MethodSummary> summaries;
            try {
                summaries = new Evaluator(adapter, ctx.err()).withSandbox(sandbox).withBatch(batch)
                        .run(dataset, name, methodNames, outDir, runLimit, settings);
            } catch (Evaluator.ResumeConflict e) {
                throw new UsageError(e.getMessage());
            }
            ctx.out().printf("%-10s %8s %6s %9s%n", "method", "correct", "total", "accuracy");
            for (MethodSummary s : summaries) {
                ctx.out().printf(Locale.ROOT, "%-10s %8d %6d %8.1f%%%n", s.method(), s.correct(), s.total(),
                        100 * s.accuracy());
            }
            ctx.out().println("wrote " + outDir.resolve("results.jsonl") + ", summary.md, accuracy.png, loss.png");
            if (demo) ctx.out().println("NOTE: demo model with random weights: these accuracies are noise.");
        }
        return 0;
    }

    /** Refuses, before any work, an --out that is a file or cannot be created or written. */
    private static void checkOutputFolder(Path outDir) {
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) {
            throw new UsageError("--out " + outDir + ": " + IoErrors.notARegularFile(outDir).replace(
                    "a regular file", "a file") + ", not a directory");
        }
        try {
            Files.createDirectories(outDir);
        } catch (IOException e) {
            throw new UsageError("--out " + outDir + ": cannot create: " + IoErrors.describe(e));
        }
        if (!Files.isWritable(outDir)) throw new UsageError("--out " + outDir + ": permission denied");
    }

    /** run.json: the model and options of this run, which every result line carries as a hash. */
    private static String runInfo(Path model, boolean demo, Device device, ScalarType dtype, Options options,
            boolean latentModeDefault) {
        JsonObject info = new JsonObject();
        info.addProperty("model", model.toAbsolutePath().toString());
        info.addProperty("demo", demo);
        info.addProperty("device", device.str().getString());
        info.addProperty("dtype", ModelOptions.name(dtype));
        JsonObject o = ResultJson.of(options);
        o.remove("method");
        if (latentModeDefault) o.addProperty("latentMode", "per method: soft; realign for the multi-agent methods");
        info.add("options", o);
        return new GsonBuilder().setPrettyPrinting().create().toJson(info) + "\n";
    }
}
