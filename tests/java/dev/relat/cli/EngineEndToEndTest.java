package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.relat.engine.Options;
import dev.relat.engine.Phase;
import dev.relat.engine.PhaseListener;
import dev.relat.engine.Result;
import dev.relat.model.CheckpointWriter;
import dev.relat.model.QwenConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line on the real engine (dev.relat.engine.Engine) and a tiny random Qwen3 checkpoint
 * with the real tokenizer: solve --json, profile, and eval with all four single-agent methods,
 * interrupted and resumed; the multi-agent methods on the embedded demo model.
 */
class EngineEndToEndTest {
    /** qwen3, hidden 64, 2 layers, 1 query / 1 KV head of dimension 64, the full Qwen vocabulary, tied. */
    static final QwenConfig TINY =
            CheckpointWriter.config("qwen3", 64, 96, 2, 1, 1, 64, CheckpointWriter.QWEN_VOCAB, true, "float32");

    @TempDir
    static Path tmp;

    static Path model;

    @BeforeAll
    static void writeModel() {
        model = CheckpointWriter.writeRandom(tmp.resolve("tiny"), TINY, 11, 1);
    }

    private static CliTestSupport.Run run(String... args) {
        return CliTestSupport.run(EngineFactories.real(), tmp.resolve("cache"), args);
    }

    @Test
    void solveJsonReportsEveryField() {
        CliTestSupport.Run r = run("solve", "--json", "--model", model.toString(), "-K", "3", "-N", "2",
                "--max-new-tokens", "5", "What is 2+3?");
        assertEquals(0, r.exit(), r.err());
        JsonObject res = JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonObject("result");
        assertEquals("relat", res.get("method").getAsString());
        assertTrue(res.get("promptTokens").getAsInt() > 5);
        assertEquals(3, res.get("latentTokens").getAsInt());
        assertTrue(res.get("answerTokens").getAsInt() >= 1 && res.get("answerTokens").getAsInt() <= 5);
        JsonArray losses = res.getAsJsonArray("losses");
        assertEquals(3, losses.size(), "before each of 2 updates, then after the last");
        for (var l : losses) assertTrue(Double.isFinite(l.getAsDouble()) && l.getAsDouble() > 0);
        JsonObject phases = res.getAsJsonObject("phaseNanos");
        for (Phase p : Phase.values()) assertTrue(phases.get(ResultJson.key(p)).getAsLong() > 0, p.label());
    }

    @Test
    void profilePrintsTheBreakdownOnTheCpu() {
        CliTestSupport.Run r = run("profile", "--model", model.toString(), "-K", "2", "-N", "1", "--max-new-tokens",
                "3", "q");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("calls are no-ops: CUDA not loaded"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+backward\\s+1\\s.*")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+reconstruction forward\\s+2\\s.*")), r.out());
    }

    @Test
    void evalAllFourMethodsResumes() throws IOException {
        Path out = tmp.resolve("eval");
        String[] common = {"eval", "--model", model.toString(), "--data", EvalCommandTest.FIXTURE.toString(),
            "--methods", "single,latent,relat,query-lm", "-K", "2", "-N", "1", "--max-new-tokens", "3", "--out",
            out.toString()};
        CliTestSupport.Run first = run(concat(common, "--limit", "2"));
        assertEquals(0, first.exit(), first.err());
        assertTrue(first.err().contains("line 11: not valid JSON"), first.err());
        assertEquals(8, Files.readAllLines(out.resolve("results.jsonl")).size());
        CliTestSupport.Run second = run(concat(common, "--limit", "3"));
        assertEquals(0, second.exit(), second.err());
        assertTrue(second.err().contains("resuming, 8 results already"), second.err());
        List<String> lines = Files.readAllLines(out.resolve("results.jsonl"));
        assertEquals(12, lines.size());
        for (String line : lines) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            JsonObject rec = o.getAsJsonObject("result");
            boolean trains = List.of("relat", "query-lm").contains(o.get("method").getAsString());
            assertEquals(trains ? 2 : 0, rec.getAsJsonArray("losses").size(), line);
            assertEquals(o.get("method").getAsString().equals("single") ? 0 : 2, rec.get("latentTokens").getAsInt());
        }
        assertTrue(Files.readString(out.resolve("summary.md")).contains("| query-lm | "));
        for (String png : List.of("accuracy.png", "loss.png")) assertTrue(ImageIO.read(out.resolve(png).toFile()) != null);
    }

    /**
     * The multi-agent methods beside single on the embedded demo model, the run stopped midway
     * (the engine fails on the sixth solve, and a torn line is left as kill -9 leaves one) and
     * resumed: finished lines are kept, every method's line carries its agents.
     */
    @Test
    void evalMultiAgentMethodsOnTheDemoModelResumesAfterAKill() throws IOException {
        Path out = tmp.resolve("eval-mas");
        String[] args = {"eval", "--data", EvalCommandTest.FIXTURE.toString(), "--methods",
            "single,latent-mas,text-mas,relat-mas", "-K", "2", "-N", "1", "--max-new-tokens", "3", "--limit", "2",
            "--out", out.toString()};
        SolveEngine.Factory real = EngineFactories.real();
        AtomicInteger budget = new AtomicInteger(5);
        SolveEngine.Factory dying = (checkout, device, dtype) -> {
            SolveEngine engine = real.open(checkout, device, dtype);
            return new SolveEngine() {
                @Override
                public Result solve(String question, Options options, PhaseListener listener) {
                    if (budget.getAndDecrement() <= 0) throw new IllegalStateException("killed");
                    return engine.solve(question, options, listener);
                }

                @Override
                public QwenConfig config() {
                    return engine.config();
                }

                @Override
                public void close() {
                    engine.close();
                }
            };
        };
        CliTestSupport.Run killed = CliTestSupport.run(dying, tmp.resolve("cache"), args);
        assertEquals(1, killed.exit(), killed.err());
        assertEquals(5, Files.readAllLines(out.resolve("results.jsonl")).size());
        Files.writeString(out.resolve("results.jsonl"), "{\"id\": \"q0", StandardCharsets.UTF_8,
                StandardOpenOption.APPEND);

        CliTestSupport.Run resumed = run(args);
        assertEquals(0, resumed.exit(), resumed.err());
        assertTrue(resumed.err().contains("resuming, 5 results already"), resumed.err());
        List<String> lines = Files.readAllLines(out.resolve("results.jsonl"));
        assertEquals(8, lines.size());
        Map<String, Integer> latent = Map.of("single", 0, "latent-mas", 6, "text-mas", 0, "relat-mas", 6);
        for (String line : lines) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            String method = o.get("method").getAsString();
            JsonObject rec = o.getAsJsonObject("result");
            assertEquals(latent.get(method), rec.get("latentTokens").getAsInt(), line);
            assertEquals(method.equals("relat-mas") ? 2 : 0, rec.getAsJsonArray("losses").size(), line);
            if (method.equals("single")) {
                assertTrue(!rec.has("agents"), line);
                continue;
            }
            JsonArray agents = rec.getAsJsonArray("agents");
            assertEquals(List.of("planner", "critic", "refiner", "judger"),
                    agents.asList().stream().map(a -> a.getAsJsonObject().get("role").getAsString()).toList());
            int prompt = 0;
            for (var a : agents) prompt += a.getAsJsonObject().get("promptTokens").getAsInt();
            assertEquals(rec.get("promptTokens").getAsInt(), prompt, line);
            JsonObject judger = agents.get(3).getAsJsonObject();
            assertEquals(rec.get("answerTokens").getAsInt(), judger.get("decodedTokens").getAsInt(), line);
            assertTrue(judger.getAsJsonObject("phaseNanos").get("answer_decode").getAsLong() > 0, line);
        }
        String summary = Files.readString(out.resolve("summary.md"));
        for (String m : latent.keySet()) assertTrue(summary.contains("| " + m + " | "), summary);
        assertTrue(Files.readString(out.resolve("run.json")).contains("\"role\": \"judger\""));
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
