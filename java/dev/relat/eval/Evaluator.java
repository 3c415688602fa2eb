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
import java.util.ArrayList;
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
    private int batch = 1;

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
     * Questions solved together per method ({@link Solver#solveAll}): the pending questions of a
     * method are taken from the queue batch at a time; each batch writes its lines once solved, so a
     * kill loses at most the batch in flight. 1 (the default) solves question by question, every
     * method of a question before the next question.
     *
     * @param batch at least 1
     * @return this
     * @throws IllegalArgumentException when batch is below 1
     */
    public Evaluator withBatch(int batch) {
        if (batch < 1) throw new IllegalArgumentException("the batch must be at least 1, got " + batch);
        this.batch = batch;
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
            if (batch == 1) {
                for (Question q : questions) {
                    for (String method : methods) {
                        if (results.isDone(q.id(), method)) continue;
                        results.append(solveOne(q, method, settingsHash));
                        progress.step(method + " " + q.id());
                    }
                }
            } else {
                for (String method : methods) {
                    List<Question> pending = questions.stream().filter(q -> !results.isDone(q.id(), method)).toList();
                    for (int from = 0; from < pending.size(); from += batch) {
                        List<Question> chunk = pending.subList(from, Math.min(pending.size(), from + batch));
                        for (JsonObject entry : solveBatch(chunk, method, settingsHash)) {
                            results.append(entry);
                            progress.step(method + " " + entry.get("id").getAsString());
                        }
                    }
                }
            }
            List<JsonObject> these = results.entries().stream().filter(e -> questions.stream().anyMatch(
                    q -> q.id().equals(e.get("id").getAsString()))).toList();
            List<MethodSummary> summaries = Report.summarise(these, methods);
            Report.write(outDir, summaries, PairedComparison.all(these, methods), datasetName, dataset.problems());
            return summaries;
        }
    }

    /** One question's result line, or its error line when it cannot be solved as asked. */
    private JsonObject solveOne(Question q, String method, String settingsHash) throws Exception {
        try {
            return entryOf(q, method, solver.solve(q, method), settingsHash);
        } catch (RelatException e) {
            // This question cannot be solved as asked (too long, diverged): recorded, not fatal.
            log.println("relat eval: " + method + " " + q.id() + ": error: " + e.getMessage());
            return errorEntry(q, method, e.getMessage(), settingsHash);
        }
    }

    /**
     * The result lines of questions solved together; when the batch fails as asked (one question too
     * long, a loss diverged) each is solved alone, so only the question at fault gets an error line.
     */
    private List<JsonObject> solveBatch(List<Question> chunk, String method, String settingsHash) throws Exception {
        List<Solver.Outcome> outcomes;
        try {
            outcomes = solver.solveAll(chunk, method);
        } catch (RelatException e) {
            log.println("relat eval: " + method + ": a batch of " + chunk.size() + " failed (" + e.getMessage()
                    + "); solving its questions one by one");
            List<JsonObject> entries = new ArrayList<>();
            for (Question q : chunk) entries.add(solveOne(q, method, settingsHash));
            return entries;
        }
        if (outcomes.size() != chunk.size()) {
            throw new IllegalStateException("the solver returned " + outcomes.size() + " outcomes for " + chunk.size()
                    + " questions");
        }
        List<JsonObject> entries = new ArrayList<>();
        for (int i = 0; i < chunk.size(); i++) entries.add(entryOf(chunk.get(i), method, outcomes.get(i), settingsHash));
        return entries;
    }

    private JsonObject entryOf(Question q, String method, Solver.Outcome outcome, String settingsHash) {
        return q.kind() == AnswerKind.CODE ? CodeJudge.entry(sandbox, q, method, outcome, settingsHash)
                : entry(q, method, outcome, settingsHash);
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
