package dev.relat.eval;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Runs every method on every question of a dataset and writes, into the output folder,
 * results.jsonl (one line per question x method), summary.md, accuracy.png and loss.png.
 * Rerunning on the same folder skips the lines already there.
 */
public final class Evaluator {
    private final Solver solver;
    private final PrintStream log;

    public Evaluator(Solver solver, PrintStream log) {
        this.solver = solver;
        this.log = log;
    }

    /** Returns the per-method summary; limit <= 0 means every question. */
    public List<MethodSummary> run(Dataset dataset, String datasetName, List<String> methods, Path outDir,
            int limit) throws Exception {
        for (Dataset.Problem p : dataset.problems()) log.println("relat eval: skipping " + datasetName + " " + p);
        List<Question> questions = limit > 0 && limit < dataset.questions().size()
                ? dataset.questions().subList(0, limit) : dataset.questions();
        Files.createDirectories(outDir);
        try (ResultsLog results = ResultsLog.open(outDir.resolve("results.jsonl"))) {
            int already = 0;
            for (Question q : questions) for (String m : methods) if (results.isDone(q.id(), m)) already++;
            if (already > 0) log.println("relat eval: resuming, " + already + " results already in " + outDir);
            Progress progress = new Progress(log, questions.size() * methods.size(), already);
            for (Question q : questions) {
                for (String method : methods) {
                    if (results.isDone(q.id(), method)) continue;
                    Solver.Outcome outcome = solver.solve(q, method);
                    results.append(entry(q, method, outcome));
                    progress.step(method + " " + q.id());
                }
            }
            List<MethodSummary> summaries = Report.summarise(
                    results.entries().stream().filter(e -> questions.stream().anyMatch(
                            q -> q.id().equals(e.get("id").getAsString()))).toList(), methods);
            Report.write(outDir, summaries, datasetName, dataset.problems());
            return summaries;
        }
    }

    static JsonObject entry(Question q, String method, Solver.Outcome outcome) {
        String predicted = Answers.extract(outcome.answerText(), q.kind());
        JsonObject o = new JsonObject();
        o.addProperty("id", q.id());
        o.addProperty("method", method);
        o.addProperty("line", q.line());
        o.addProperty("reference", q.reference());
        o.addProperty("predicted", predicted);
        o.addProperty("correct", Answers.matches(predicted, q.reference(), q.kind()));
        JsonArray losses = new JsonArray();
        for (double l : outcome.losses()) losses.add(l);
        o.add("losses", losses);
        o.addProperty("answer", outcome.answerText());
        if (outcome.record() != null) o.add("result", outcome.record());
        return o;
    }

    /** Reads a results file's complete lines (for tests and tools). */
    static List<JsonObject> readResults(Path file) throws IOException {
        try (ResultsLog r = ResultsLog.open(file)) {
            return List.copyOf(r.entries());
        }
    }
}
