package dev.relat.eval;

import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import dev.relat.RelatException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs every method on every question of a dataset and writes, into the output folder,
 * results.jsonl (one line per question x method), summary.md, accuracy.png and loss.png, and
 * run.json (the settings). Rerunning on the same folder skips the lines already there, provided
 * they were made with the same settings for the same question text ({@link Settings}).
 */
public final class Evaluator {
    private final Solver solver;
    private final PrintStream log;
    private CodeSandbox sandbox;

    public Evaluator(Solver solver, PrintStream log) {
        this.solver = solver;
        this.log = log;
    }

    /** Where code questions ({@link AnswerKind#CODE}) are run; required when there are any. */
    public Evaluator withSandbox(CodeSandbox sandbox) {
        this.sandbox = sandbox;
        return this;
    }

    /**
     * What the results of a run depend on besides the question: the model and the options, as the
     * JSON written to run.json. Every result line carries its hash; a resume refuses results made
     * with other settings, or for another text of their question, unless {@code forceResume}
     * (then they are moved to results.dropped.jsonl and redone).
     */
    public record Settings(String runJson, boolean forceResume) {
        public static final Settings NONE = new Settings("{}\n", false);

        String hash() {
            return Json.hash(runJson);
        }
    }

    /** Refusal to resume over results that other settings or another question text produced. */
    public static final class ResumeConflict extends IllegalStateException {
        ResumeConflict(String message) {
            super(message);
        }
    }

    /** Returns the per-method summary; {@code limit <= 0} means every question. */
    public List<MethodSummary> run(Dataset dataset, String datasetName, List<String> methods, Path outDir,
            int limit) throws Exception {
        return run(dataset, datasetName, methods, outDir, limit, Settings.NONE);
    }

    public List<MethodSummary> run(Dataset dataset, String datasetName, List<String> methods, Path outDir,
            int limit, Settings settings) throws Exception {
        for (Dataset.Problem p : dataset.problems()) log.println("relat eval: skipping " + datasetName + " " + p);
        List<Question> questions = limit > 0 && limit < dataset.questions().size()
                ? dataset.questions().subList(0, limit) : dataset.questions();
        if (sandbox == null && questions.stream().anyMatch(q -> q.kind() == AnswerKind.CODE)) {
            throw new IllegalStateException("code questions need a CodeSandbox (Evaluator.withSandbox)");
        }
        Files.createDirectories(outDir);
        try (ResultsLog results = ResultsLog.open(outDir.resolve("results.jsonl"))) {
            for (String note : results.notes()) log.println("relat eval: " + note);
            resolveStale(results, questions, settings, outDir);
            writeRunJson(outDir, settings);
            int already = 0;
            for (Question q : questions) for (String m : methods) if (results.isDone(q.id(), m)) already++;
            if (already > 0) log.println("relat eval: resuming, " + already + " results already in " + outDir);
            Progress progress = new Progress(log, questions.size() * methods.size(), already);
            String settingsHash = settings.hash();
            for (Question q : questions) {
                for (String method : methods) {
                    if (results.isDone(q.id(), method)) continue;
                    JsonObject entry;
                    try {
                        Solver.Outcome outcome = solver.solve(q, method);
                        entry = q.kind() == AnswerKind.CODE ? CodeJudge.entry(sandbox, q, method, outcome, settingsHash)
                                : entry(q, method, outcome, settingsHash);
                    } catch (RelatException e) {
                        // This question cannot be solved as asked (too long, diverged): recorded, not fatal.
                        log.println("relat eval: " + method + " " + q.id() + ": error: " + e.getMessage());
                        entry = errorEntry(q, method, e.getMessage(), settingsHash);
                    }
                    results.append(entry);
                    progress.step(method + " " + q.id());
                }
            }
            List<JsonObject> these = results.entries().stream().filter(e -> questions.stream().anyMatch(
                    q -> q.id().equals(e.get("id").getAsString()))).toList();
            List<MethodSummary> summaries = Report.summarise(these, methods);
            Report.write(outDir, summaries, PairedComparison.all(these, methods), datasetName, dataset.problems());
            return summaries;
        }
    }

    /** Results of these questions made with other settings or for another question text. */
    private void resolveStale(ResultsLog results, List<Question> questions, Settings settings, Path outDir)
            throws IOException {
        Map<String, String> questionHash = new HashMap<>();
        for (Question q : questions) questionHash.put(q.id(), questionHash(q));
        String settingsHash = settings.hash();
        int otherSettings = 0, otherQuestion = 0;
        for (JsonObject e : results.entries()) {
            String expected = questionHash.get(e.get("id").getAsString());
            if (expected == null) continue;  // not in this run (another --limit): kept, not counted
            if (!settingsHash.equals(text(e, "settingsHash"))) {
                otherSettings++;
            } else if (!expected.equals(text(e, "questionHash"))) {
                otherQuestion++;
            }
        }
        if (otherSettings + otherQuestion == 0) return;
        String what = (otherSettings > 0 ? otherSettings + " results made with other settings (run.json"
                + (Files.exists(outDir.resolve("run.json")) ? " has them" : " is missing") + ")" : "")
                + (otherSettings > 0 && otherQuestion > 0 ? " and " : "")
                + (otherQuestion > 0 ? otherQuestion + " results of questions whose text or answer has changed"
                        + " under the same id" : "");
        if (!settings.forceResume()) {
            throw new ResumeConflict(outDir.resolve("results.jsonl") + " holds " + what
                    + "; use another --out, or --force-resume to redo them");
        }
        int dropped = results.drop(e -> {
            String expected = questionHash.get(e.get("id").getAsString());
            return expected != null && !(settingsHash.equals(text(e, "settingsHash"))
                    && expected.equals(text(e, "questionHash")));
        });
        log.println("relat eval: --force-resume: moved " + dropped + " results (" + what
                + ") to results.dropped.jsonl; they will be redone");
    }

    private void writeRunJson(Path outDir, Settings settings) throws IOException {
        Path file = outDir.resolve("run.json");
        if (Files.exists(file)) {
            String before = Files.readString(file, StandardCharsets.UTF_8);
            if (before.equals(settings.runJson())) return;
            Files.writeString(outDir.resolve("run.previous.json"), before, StandardCharsets.UTF_8);
        }
        Files.writeString(file, settings.runJson(), StandardCharsets.UTF_8);
    }

    private static String text(JsonObject o, String field) {
        return o.has(field) && o.get(field).isJsonPrimitive() ? o.get(field).getAsString() : "";
    }

    static String questionHash(Question q) {
        return Json.hash(q.text(), q.reference(), q.kind().name());
    }

    /** What identifies a result line: the question, the method, the hashes that key resuming, the status. */
    static JsonObject line(Question q, String method, String settingsHash, String status) {
        JsonObject o = new JsonObject();
        o.addProperty("id", q.id());
        o.addProperty("method", method);
        o.addProperty("line", q.line());
        o.addProperty("questionHash", questionHash(q));
        o.addProperty("settingsHash", settingsHash);
        o.addProperty("status", status);
        return o;
    }

    static JsonObject errorEntry(Question q, String method, String message, String settingsHash) {
        JsonObject o = line(q, method, settingsHash, Json.ERROR);
        o.addProperty("error", message);
        o.addProperty("reference", q.reference());
        o.add("predicted", JsonNull.INSTANCE);
        o.addProperty("correct", false);
        o.add("losses", new JsonArray());
        return o;
    }

    static JsonObject entry(Question q, String method, Solver.Outcome outcome, String settingsHash) {
        String predicted = Answers.extract(outcome.answerText(), q.kind());
        JsonObject o = line(q, method, settingsHash, Json.status(outcome.losses()));
        o.addProperty("reference", q.reference());
        o.addProperty("predicted", predicted);
        o.addProperty("correct", Answers.matches(predicted, q.reference(), q.kind()));
        o.add("losses", Json.numbers(outcome.losses()));
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
