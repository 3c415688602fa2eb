package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import dev.relat.engine.QuestionException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The harness with a scripted solver: accuracy, reports, malformed lines, resuming. */
class EvaluatorTest {
    @TempDir Path dir;

    private static final List<String> METHODS = List.of("single", "latent", "relat", "query-lm");

    /** 20 questions "what is i + i?" (answer 2i), plus one malformed line at line 8. */
    private Path fixture() throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 1; i <= 20; i++) {
            lines.add("{\"id\":\"q" + i + "\",\"question\":\"What is " + i + " + " + i + "?\",\"answer\":\"" + (2 * i) + "\"}");
            if (i == 7) lines.add("{\"id\": \"broken\", \"question\": ");
        }
        Path file = dir.resolve("fixture.jsonl");
        Files.write(file, lines);
        return file;
    }

    /** relat and query-lm answer right; single only on even questions; latent never. */
    private static Solver.Outcome answer(Question q, String method) {
        int n = Integer.parseInt(q.id().substring(1));
        boolean right = switch (method) {
            case "relat", "query-lm" -> true;
            case "single" -> n % 2 == 0;
            default -> false;
        };
        List<Double> losses = method.equals("relat") ? List.of(3.0, 2.5, 2.0, 1.6, 1.3, 1.1) : List.of();
        JsonObject record = new JsonObject();
        record.addProperty("method", method);
        return new Solver.Outcome("so the answer is \\boxed{" + (right ? 2 * n : 2 * n + 1) + "}", losses, record);
    }

    @Test
    void writesResultsSummaryAndPlots() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        assertEquals(20, data.questions().size());
        assertEquals(1, data.problems().size());
        assertEquals(8, data.problems().get(0).line(), "the malformed line is reported by its number");

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Path out = dir.resolve("out");
        List<MethodSummary> s = new Evaluator(EvaluatorTest::answer, new PrintStream(log, true, StandardCharsets.UTF_8))
                .run(data, "fixture", METHODS, out, 0);
        assertEquals(List.of(10, 0, 20, 20), s.stream().map(MethodSummary::correct).toList());
        assertEquals(80, Files.readAllLines(out.resolve("results.jsonl")).size());
        String md = Files.readString(out.resolve("summary.md"));
        assertTrue(md.contains("| single | 10 | 20 | 50.0% |"), md);
        assertTrue(md.contains("line 8"), "summary lists the skipped line: " + md);
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("skipping fixture line 8"));
        assertEquals(720, ImageIO.read(out.resolve("accuracy.png").toFile()).getWidth());
        assertEquals(440, ImageIO.read(out.resolve("loss.png").toFile()).getHeight());
    }

    /**
     * --batch: the same lines as one question at a time, the questions handed over B at a time per
     * method; a batch that fails as asked is solved again one by one, so only its culprit gets an error.
     */
    @Test
    void batchesWriteTheLinesOneAtATimeWrites() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        Solver failing = (q, m) -> {
            if (q.id().equals("q5") && m.equals("relat")) throw new QuestionException("too long");
            return answer(q, m);
        };
        new Evaluator(failing, quiet).run(data, "f", METHODS, dir.resolve("one"), 0);
        List<Integer> batchSizes = new ArrayList<>();
        Solver batched = new Solver() {
            @Override
            public Outcome solve(Question q, String method) throws Exception {
                return failing.solve(q, method);
            }

            @Override
            public List<Outcome> solveAll(List<Question> questions, String method) throws Exception {
                batchSizes.add(questions.size());
                List<Outcome> outcomes = new ArrayList<>();
                for (Question q : questions) outcomes.add(solve(q, method));
                return outcomes;
            }
        };
        new Evaluator(batched, quiet).withBatch(6).run(data, "f", METHODS, dir.resolve("six"), 0);
        assertEquals(List.of(6, 6, 6, 2, 6, 6, 6, 2, 6, 6, 6, 2, 6, 6, 6, 2), batchSizes, "20 questions, 4 methods");
        List<String> one = sortedLines(dir.resolve("one"));
        assertEquals(80, one.size());
        assertEquals(one, sortedLines(dir.resolve("six")));
        assertTrue(one.stream().anyMatch(l -> l.contains("\"q5\"") && l.contains("too long")), "q5 relat's error line");
        assertThrows(IllegalArgumentException.class, () -> new Evaluator(batched, quiet).withBatch(0));
    }

    private static List<String> sortedLines(Path out) throws Exception {
        return Evaluator.readResults(out.resolve("results.jsonl")).stream().map(JsonObject::toString).sorted().toList();
    }

    @Test
    void resumesWithoutRedoingFinishedLines() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        Path out = dir.resolve("out");
        AtomicInteger calls = new AtomicInteger();
        Solver crashing = (q, m) -> {
            if (calls.incrementAndGet() > 30) throw new IllegalStateException("killed");
            return answer(q, m);
        };
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertThrows(IllegalStateException.class, () -> new Evaluator(crashing, quiet).run(data, "f", METHODS, out, 0));
        assertEquals(30, Evaluator.readResults(out.resolve("results.jsonl")).size(), "finished lines survive");

        // A torn last line, as if the process died mid-write: it is cut off and redone.
        Files.writeString(out.resolve("results.jsonl"), "{\"id\":\"q9\",\"meth", StandardOpenOption.APPEND);
        AtomicInteger resumed = new AtomicInteger();
        new Evaluator((q, m) -> {
            resumed.incrementAndGet();
            return answer(q, m);
        }, quiet).run(data, "f", METHODS, out, 0);
        assertEquals(50, resumed.get(), "only the 50 unfinished lines are solved");
        List<JsonObject> all = Evaluator.readResults(out.resolve("results.jsonl"));
        assertEquals(80, all.size());
        assertEquals(80, all.stream().map(o -> o.get("method").getAsString() + o.get("id").getAsString()).distinct().count());
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    }

    @Test
    void nonUtf8AndRepeatedIdLinesAreReportedAndSkipped() throws Exception {
        Path file = dir.resolve("bad.jsonl");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes("{\"id\":\"a\",\"question\":\"one?\",\"answer\":\"1\"}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes(new byte[] {'{', '"', 'i', (byte) 0xff, '"', '}', '\n'});
        bytes.writeBytes("{\"id\":\"b\",\"question\":\"two?\",\"answer\":\"2\"}\r\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\":\"a\",\"question\":\"three?\",\"answer\":\"3\"}\n".getBytes(StandardCharsets.UTF_8));
        Files.write(file, bytes.toByteArray());
        Dataset data = Dataset.read(file, Dataset.Format.preset("gsm8k"));
        assertEquals(List.of("a", "b"), data.questions().stream().map(Question::id).toList());
        assertEquals(List.of("line 2: not valid UTF-8", "line 4: id 'a' is already the id of line 1"),
                data.problems().stream().map(Dataset.Problem::toString).toList());
        assertEquals("two?", data.questions().get(1).text(), "a CRLF line ending is not part of the text");
    }

    @Test
    void nonFiniteLossesAreWrittenAsNullWithAStatus() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        Path out = dir.resolve("out");
        Solver diverging = (q, m) -> new Solver.Outcome("\\boxed{0}",
                q.id().equals("q2") ? List.of(2.0, Double.NaN, Double.POSITIVE_INFINITY) : List.of(2.0, 1.0, 0.5),
                null);
        List<MethodSummary> s = new Evaluator(diverging, quiet()).run(data, "f", List.of("relat"), out, 3);
        String text = Files.readString(out.resolve("results.jsonl"));
        for (String line : text.split("\n")) {
            JsonReader strict = new JsonReader(new StringReader(line));
            strict.setStrictness(Strictness.STRICT);
            JsonObject o = JsonParser.parseReader(strict).getAsJsonObject();
            boolean bad = o.get("id").getAsString().equals("q2");
            assertEquals(bad ? "non_finite_loss" : "ok", o.get("status").getAsString(), line);
            assertEquals(bad, o.getAsJsonArray("losses").get(1).isJsonNull(), line);
        }
        assertEquals(2.0, s.get(0).meanLoss()[0], 1e-12);
        assertEquals(1.0, s.get(0).meanLoss()[1], 1e-12, "a null loss is left out of the step's mean");
    }

    @Test
    void resumeRefusesOtherSettingsUnlessForced() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        Path out = dir.resolve("out");
        Evaluator.Settings first = new Evaluator.Settings("{\"latentSteps\": 4}\n", false);
        new Evaluator(EvaluatorTest::answer, quiet()).run(data, "f", METHODS, out, 5, first);
        assertEquals(20, Evaluator.readResults(out.resolve("results.jsonl")).size());

        Evaluator.Settings second = new Evaluator.Settings("{\"latentSteps\": 5}\n", false);
        AtomicInteger calls = new AtomicInteger();
        Solver counting = (q, m) -> {
            calls.incrementAndGet();
            return answer(q, m);
        };
        var e = assertThrows(Evaluator.ResumeConflict.class,
                () -> new Evaluator(counting, quiet()).run(data, "f", METHODS, out, 5, second));
        assertTrue(e.getMessage().contains("20 results made with other settings"), e.getMessage());
        assertTrue(e.getMessage().contains("--force-resume"), e.getMessage());
        assertEquals(0, calls.get());
        assertEquals(first.runJson(), Files.readString(out.resolve("run.json")), "a refused run changes nothing");

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        new Evaluator(counting, new PrintStream(log, true, StandardCharsets.UTF_8))
                .run(data, "f", METHODS, out, 5, new Evaluator.Settings(second.runJson(), true));
        assertEquals(20, calls.get(), "every result of the old settings is redone");
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("moved 20 results"), log.toString());
        assertEquals(20, Files.readAllLines(out.resolve("results.dropped.jsonl")).size(), "nothing is lost");
        assertEquals(second.runJson(), Files.readString(out.resolve("run.json")));
        assertEquals(first.runJson(), Files.readString(out.resolve("run.previous.json")));
    }

    @Test
    void resumeRefusesAQuestionChangedUnderItsId() throws Exception {
        Path file = fixture();
        Path out = dir.resolve("out");
        new Evaluator(EvaluatorTest::answer, quiet()).run(Dataset.read(file, Dataset.Format.preset("gsm8k")), "f",
                METHODS, out, 0);
        Files.writeString(file, Files.readString(file).replace("What is 3 + 3?", "What is 3 + 4?"));
        Dataset changed = Dataset.read(file, Dataset.Format.preset("gsm8k"));
        var e = assertThrows(Evaluator.ResumeConflict.class,
                () -> new Evaluator(EvaluatorTest::answer, quiet()).run(changed, "f", METHODS, out, 0));
        assertTrue(e.getMessage().contains("4 results of questions whose text or answer has changed"), e.getMessage());
        List<String> redone = new ArrayList<>();
        new Evaluator((q, m) -> {
            redone.add(q.id());
            return answer(q, m);
        }, quiet()).run(changed, "f", METHODS, out, 0, new Evaluator.Settings(Evaluator.Settings.NONE.runJson(), true));
        assertEquals(List.of("q3", "q3", "q3", "q3"), redone);
    }

    @Test
    void aDamagedLineIsReportedAndKeptAsideWhileTheLinesAfterItStay() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        Path out = dir.resolve("out");
        new Evaluator(EvaluatorTest::answer, quiet()).run(data, "f", METHODS, out, 0);
        Path results = out.resolve("results.jsonl");
        List<String> lines = new ArrayList<>(Files.readAllLines(results));
        String lost = lines.set(10, "garbage from a disk error");
        Files.write(results, lines);

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        AtomicInteger calls = new AtomicInteger();
        new Evaluator((q, m) -> {
            calls.incrementAndGet();
            return answer(q, m);
        }, new PrintStream(log, true, StandardCharsets.UTF_8)).run(data, "f", METHODS, out, 0);
        assertEquals(1, calls.get(), "only the damaged line's result is redone");
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("results.jsonl line 11 is not a result line"),
                log.toString(StandardCharsets.UTF_8));
        assertEquals(List.of("garbage from a disk error"), Files.readAllLines(out.resolve("results.damaged.txt")));
        assertEquals(80, Evaluator.readResults(results).size());
        assertTrue(Files.readString(results).contains(lost.substring(0, lost.indexOf("\"line\""))));
    }

    @Test
    void aQuestionTheEngineRefusesIsRecordedAsAnErrorAndTheRunGoesOn() throws Exception {
        Dataset data = Dataset.read(fixture(), Dataset.Format.preset("gsm8k"));
        Path out = dir.resolve("out");
        Solver refusing = (q, m) -> {
            if (q.id().equals("q2") && m.equals("relat")) throw new QuestionException("the question needs 9 positions");
            return answer(q, m);
        };
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        List<MethodSummary> s = new Evaluator(refusing, new PrintStream(log, true, StandardCharsets.UTF_8))
                .run(data, "f", METHODS, out, 3);
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("relat q2: error: the question needs 9 positions"),
                log.toString(StandardCharsets.UTF_8));
        MethodSummary relat = s.get(2);
        assertEquals(List.of(3, 2, 1), List.of(relat.total(), relat.correct(), relat.errors()));
        JsonObject q2 = Evaluator.readResults(out.resolve("results.jsonl")).stream()
                .filter(o -> o.get("id").getAsString().equals("q2") && o.get("method").getAsString().equals("relat"))
                .findFirst().orElseThrow();
        assertEquals("error", q2.get("status").getAsString());
        assertEquals("the question needs 9 positions", q2.get("error").getAsString());
        assertTrue(Files.readString(out.resolve("summary.md")).contains("Errors, counted as wrong"));
    }
}

