package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
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
}
