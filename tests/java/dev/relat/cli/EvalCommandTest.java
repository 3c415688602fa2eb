package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.relat.engine.Method;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * relat eval wired to the harness, against a fake engine whose accuracy per method is known:
 * relat always right, latent right on even-numbered questions, single and query-lm never.
 */
class EvalCommandTest {
    static final Path FIXTURE = Path.of("tests/data/gsm8k-mini.jsonl");

    @TempDir
    Path tmp;

    Path model;
    final Map<String, String> references = new HashMap<>();

    @BeforeEach
    void setUp() throws IOException {
        model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        for (String line : Files.readAllLines(FIXTURE)) {
            try {
                JsonObject o = JsonParser.parseString(line).getAsJsonObject();
                String a = o.get("answer").getAsString();
                references.put(o.get("question").getAsString(), a.substring(a.lastIndexOf("####") + 4).strip());
            } catch (RuntimeException malformed) {
                // line 11, on purpose
            }
        }
        assertEquals(20, references.size());
    }

    private String answer(String question, Method method) {
        String ref = references.get(question).replace(",", "");
        int n = Integer.parseInt(question.length() % 2 == 0 ? "0" : "1");
        return switch (method) {
            case RELAT -> "so the total is \\boxed{" + ref + "}";
            case LATENT -> n == 0 ? "The answer is " + ref + "." : "I think 99999";
            default -> "no idea";
        };
    }

    private FakeEngine.Factory engines(AtomicInteger budget) {
        return new FakeEngine.Factory((q, o) -> {
            if (budget != null && budget.getAndDecrement() <= 0) throw new IllegalStateException("killed");
            return answer(q, o.method());
        });
    }

    private CliTestSupport.Run eval(FakeEngine.Factory engines, Path out, String... extra) {
        List<String> args = new ArrayList<>(List.of("eval", "--model", model.toString(), "--data",
                FIXTURE.toString(), "--methods", "single,latent,relat,query-lm", "-N", "2", "--out", out.toString()));
        args.addAll(List.of(extra));
        return CliTestSupport.run(engines, null, args.toArray(String[]::new));
    }

    private static List<JsonObject> results(Path out) throws IOException {
        return Files.readAllLines(out.resolve("results.jsonl")).stream()
                .map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
    }

    @Test
    void allFourMethodsWriteResultsSummaryAndPlots() throws IOException {
        Path out = tmp.resolve("out");
        FakeEngine.Factory engines = engines(null);
        CliTestSupport.Run r = eval(engines, out);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("skipping gsm8k-mini.jsonl line 11: not valid JSON"), r.err());
        assertEquals(80, engines.calls().size());

        List<JsonObject> lines = results(out);
        assertEquals(80, lines.size());
        int latentEven = 0;
        for (String q : references.keySet()) if (q.length() % 2 == 0) latentEven++;
        Map<String, Integer> correct = new HashMap<>();
        for (JsonObject o : lines) {
            if (o.get("correct").getAsBoolean()) correct.merge(o.get("method").getAsString(), 1, Integer::sum);
            JsonObject rec = o.getAsJsonObject("result");
            for (String f : List.of("method", "answer", "promptTokens", "latentTokens", "answerTokens", "losses",
                    "phaseNanos", "peakDeviceBytes")) {
                assertTrue(rec.has(f), f);
            }
            assertEquals(o.get("method").getAsString(), rec.get("method").getAsString());
            int expectedLosses = Method.parse(o.get("method").getAsString()).trains() ? 3 : 0;
            assertEquals(expectedLosses, o.getAsJsonArray("losses").size());
        }
        assertEquals(20, correct.get("relat"));
        assertEquals(latentEven, correct.getOrDefault("latent", 0));
        assertEquals(null, correct.get("single"));

        String summary = Files.readString(out.resolve("summary.md"));
        assertTrue(summary.contains("| relat | 20 | 20 | 100.0% |"), summary);
        assertTrue(summary.contains("| single | 0 | 20 | 0.0% |"), summary);
        assertTrue(summary.contains("line 11: not valid JSON"), summary);
        for (String png : List.of("accuracy.png", "loss.png")) {
            BufferedImage image = ImageIO.read(out.resolve(png).toFile());
            assertEquals(720, image.getWidth(), png);
            assertTrue(distinctColours(image) > 3, png + " has a plot drawn on it");
        }
        assertTrue(Files.isRegularFile(out.resolve("run.json")));
        assertTrue(r.out().contains("relat") && r.out().contains("100.0%"), r.out());
    }

    private static int distinctColours(BufferedImage image) {
        Set<Integer> colours = new HashSet<>();
        for (int y = 0; y < image.getHeight(); y += 3) for (int x = 0; x < image.getWidth(); x += 3) colours.add(image.getRGB(x, y));
        return colours.size();
    }

    @Test
    void killedMidwayResumesWithoutRedoingFinishedLines() throws IOException {
        Path out = tmp.resolve("out");
        FakeEngine.Factory first = engines(new AtomicInteger(7));
        CliTestSupport.Run killed = eval(first, out);
        assertEquals(1, killed.exit(), "the engine failure stops the run");
        assertEquals(7, results(out).size(), "every finished line is on disk");

        // a torn last line (killed mid-write) is cut off and redone
        Files.writeString(out.resolve("results.jsonl"), "{\"id\": \"q03\", \"meth", StandardCharsets.UTF_8,
                StandardOpenOption.APPEND);
        FakeEngine.Factory second = engines(null);
        CliTestSupport.Run resumed = eval(second, out);
        assertEquals(0, resumed.exit(), resumed.err());
        assertTrue(resumed.err().contains("resuming, 7 results already"), resumed.err());
        assertEquals(73, second.calls().size(), "only the unfinished 73 of 80");
        List<JsonObject> lines = results(out);
        assertEquals(80, lines.size());
        Set<String> keys = new HashSet<>();
        for (JsonObject o : lines) keys.add(o.get("id").getAsString() + "/" + o.get("method").getAsString());
        assertEquals(80, keys.size(), "no (question, method) twice");
    }

    @Test
    void limitThenFullRunOnlyAddsTheRest() throws IOException {
        Path out = tmp.resolve("out");
        FakeEngine.Factory first = engines(null);
        assertEquals(0, eval(first, out, "--limit", "5").exit());
        assertEquals(20, first.calls().size());
        String summary = Files.readString(out.resolve("summary.md"));
        assertTrue(summary.contains("| relat | 5 | 5 | 100.0% |"), summary);
        FakeEngine.Factory second = engines(null);
        assertEquals(0, eval(second, out).exit());
        assertEquals(60, second.calls().size());
        assertEquals(80, results(out).size());
    }

    @Test
    void aFailureIsOneLineUnlessDebug() {
        CliTestSupport.Run quiet = eval(engines(new AtomicInteger(0)), tmp.resolve("quiet"));
        assertEquals(1, quiet.exit());
        assertTrue(quiet.err().contains("relat: error: killed"), quiet.err());
        assertTrue(quiet.err().contains("(--debug prints the stack trace)") && !quiet.err().contains("\tat "),
                quiet.err());
        CliTestSupport.Run debug = eval(engines(new AtomicInteger(0)), tmp.resolve("debug"), "--debug");
        assertEquals(1, debug.exit());
        assertTrue(debug.err().contains("\tat dev.relat."), debug.err());
    }

    @Test
    void otherSettingsAreRefusedUnlessForceResume() throws IOException {
        Path out = tmp.resolve("out");
        assertEquals(0, eval(engines(null), out, "--limit", "3").exit());
        FakeEngine.Factory other = engines(null);
        CliTestSupport.Run refused = eval(other, out, "--limit", "3", "--latent-steps", "3");
        assertEquals(2, refused.exit(), refused.err());
        assertTrue(refused.err().contains("12 results made with other settings"), refused.err());
        assertTrue(refused.err().contains("--force-resume"), refused.err());
        assertEquals(0, other.calls().size());
        CliTestSupport.Run forced = eval(other, out, "--limit", "3", "--latent-steps", "3", "--force-resume");
        assertEquals(0, forced.exit(), forced.err());
        assertEquals(12, other.calls().size(), "the old results are redone with the new settings");
        assertEquals(12, results(out).size());
    }

    @Test
    void badArguments() throws IOException {
        Path out = tmp.resolve("out");
        CliTestSupport.Run noData = CliTestSupport.run(engines(null), null, "eval", "--model", model.toString(), "--data",
                tmp.resolve("none.jsonl").toString());
        assertEquals(2, noData.exit());
        assertTrue(noData.err().contains("none.jsonl: no such file"), noData.err());
        CliTestSupport.Run dirData = CliTestSupport.run(engines(null), null, "eval", "--model", model.toString(), "--data",
                tmp.toString());
        assertEquals(2, dirData.exit());
        assertTrue(dirData.err().contains("a directory, not a file"), dirData.err());
        Path file = tmp.resolve("taken");
        Files.writeString(file, "x");
        CliTestSupport.Run outFile = eval(engines(null), file);
        assertEquals(2, outFile.exit(), outFile.err());
        assertTrue(outFile.err().contains("--out " + file + ": a file, not a directory"), outFile.err());
        CliTestSupport.Run method = eval(engines(null), out, "--methods", "relat,bogus");
        assertEquals(2, method.exit());
        assertTrue(method.err().contains("unknown method 'bogus'"), method.err());
        CliTestSupport.Run preset = eval(engines(null), out, "--preset", "nope");
        assertEquals(2, preset.exit());
        assertTrue(preset.err().contains("unknown dataset preset 'nope'"), preset.err());
        CliTestSupport.Run fields = eval(engines(null), out, "--question-field", "prompt");
        assertEquals(2, fields.exit());
        assertTrue(fields.err().contains("no usable question"), fields.err());
        assertTrue(fields.err().contains("missing question field 'prompt'"), fields.err());
    }
}
