package dev.relat.cli;

import dev.relat.eval.MethodSummary;
import dev.relat.eval.Shards;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code relat eval merge DIR... --out DIR}: the folders of a {@code --shard I/N} run as one. */
@Command(name = "merge", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {"Merges the output folders of `relat eval --shard I/N` runs, one per shard, into --out:"
                + " results.jsonl, run.json, merged.json (the shards), summary.md, accuracy.png and loss.png.",
            "Refuses, naming the folder and field, shards made with another model, data file (SHA-256), format,"
                + " --limit, methods, options or N, a shard given twice, a missing shard, a question in two"
                + " shards and a shard that has not finished."})
final class EvalMergeCommand implements Callable<Integer> {
    @ParentCommand
    EvalCommand eval;

    @Parameters(arity = "1..*", paramLabel = "DIR", description = "the --out folders of the shards")
    List<Path> shards;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "where the merged run goes")
    Path out;

    @Override
    public Integer call() throws Exception {
        Context ctx = eval.parent.context;
        Shards.Merged merged;
        try {
            merged = Shards.merge(shards, out);
        } catch (Shards.Refused e) {
            throw new UsageError("eval merge: " + e.getMessage());
        }
        ctx.out().printf("merged %d shards, %d questions%n", merged.shards(), merged.questions());
        ctx.out().printf("%-10s %8s %6s %9s%n", "method", "correct", "total", "accuracy");
        for (MethodSummary s : merged.summaries()) {
            ctx.out().printf(Locale.ROOT, "%-10s %8d %6d %8.1f%%%n", s.method(), s.correct(), s.total(),
                    100 * s.accuracy());
        }
        ctx.out().println("wrote " + out.resolve("results.jsonl") + ", summary.md, accuracy.png, loss.png");
        return 0;
    }
}
