package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.relat.engine.Method;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** relat eval --shard I/N and relat eval merge, against a fake engine that answers from the question. */
class EvalMergeTest {
    static final Path FIXTURE = EvalCommandTest.FIXTURE;

    @TempDir
    Path tmp;

    Path model;

    @BeforeEach
    void setUp() throws IOException {
        model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
    }

    /** Deterministic, and right on about half the questions for relat, a third for single. */
    private static FakeEngine.Factory engines() {
        return new FakeEngine.Factory((q, o) -> {
            int h = Math.floorMod(q.hashCode(), 6);
            return o.method() == Method.RELAT ? "\\boxed{" + (h % 2) + "}" : "The answer is " + (h % 3) + ".";
        });
    }

    private CliTestSupport.Run eval(Path data, Path out, String... extra) {
        List<String> args = new ArrayList<>(List.of("eval", "--model", model.toString(), "--data", data.toString(),
                "--methods", "single,relat", "-N", "2", "--out", out.toString()));
        args.addAll(List.of(extra));
        return CliTestSupport.run(engines(), null, args.toArray(String[]::new));
    }

    private static CliTestSupport.Run merge(Path out, Path... dirs) {
        List<String> args = new ArrayList<>(List.of("eval", "merge"));
        for (Path d : dirs) args.add(d.toString());
        args.addAll(List.of("--out", out.toString()));
        return CliTestSupport.run(engines(), null, args.toArray(String[]::new));
    }

    /** id, method, predicted, correct of every line, in file order. */
    private static List<String> answers(Path out) throws IOException {
        List<String> rows = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("results.jsonl"))) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            rows.add(o.get("id").getAsString() + " " + o.get("method").getAsString() + " "
                    + o.get("predicted") + " " + o.get("correct"));
        }
        return rows;
    }

    @Test
    void twoShardsMergedEqualTheUnshardedRun() throws IOException {
        Path whole = tmp.resolve("whole"), s0 = tmp.resolve("s0"), s1 = tmp.resolve("s1"), merged = tmp.resolve("merged");
        assertEquals(0, eval(FIXTURE, whole).exit());
        CliTestSupport.Run r0 = eval(FIXTURE, s0, "--shard", "0/2");
        assertEquals(0, r0.exit(), r0.err());
        assertEquals(0, eval(FIXTURE, s1, "--shard", "1/2").exit());
        int n0 = Files.readAllLines(s0.resolve("results.jsonl")).size();
        int n1 = Files.readAllLines(s1.resolve("results.jsonl")).size();
        assertTrue(n0 > 0 && n1 > 0 && n0 + n1 == 40, n0 + " + " + n1);
        JsonObject shard = JsonParser.parseString(Files.readString(s1.resolve("shard.json"))).getAsJsonObject();
        assertEquals("1/2", shard.get("shard").getAsString());
        assertEquals(n1 / 2, shard.getAsJsonArray("questions").size());

        CliTestSupport.Run m = merge(merged, s1, s0);
        assertEquals(0, m.exit(), m.err());
        assertTrue(m.out().contains("merged 2 shards, 20 questions"), m.out());
        assertEquals(answers(whole), answers(merged));
        String wholeSummary = Files.readString(whole.resolve("summary.md"));
        String mergedSummary = Files.readString(merged.resolve("summary.md"));
        // the same tables; only the title (and the skipped-lines list of the data file) differ
        String table = wholeSummary.substring(wholeSummary.indexOf("| method"), wholeSummary.indexOf("\nSkipped"));
        assertTrue(mergedSummary.contains(table), mergedSummary);
        assertTrue(mergedSummary.contains("merged from 2 shards"), mergedSummary);
        assertTrue(Files.exists(merged.resolve("accuracy.png")));
        assertEquals(Files.readString(s0.resolve("run.json")), Files.readString(merged.resolve("run.json")));
        // merging again into the same folder replaces the merge
        assertEquals(0, merge(merged, s0, s1).exit());
    }

    @Test
    void mergeRefusesShardsThatAreNotOneRun() throws IOException {
        Path s0 = tmp.resolve("s0"), s1 = tmp.resolve("s1"), s2 = tmp.resolve("s2"), other = tmp.resolve("other");
        assertEquals(0, eval(FIXTURE, s0, "--shard", "0/3").exit());
        assertEquals(0, eval(FIXTURE, s1, "--shard", "1/3").exit());
        assertEquals(0, eval(FIXTURE, s2, "--shard", "2/3").exit());
        assertEquals(0, eval(FIXTURE, other, "--shard", "2/3", "--latent-steps", "3").exit());

        CliTestSupport.Run options = merge(tmp.resolve("m1"), s0, s1, other);
        assertEquals(2, options.exit());
        assertTrue(options.err().contains(other + ": run.json field options.latentSteps differs from " + s0),
                options.err());

        CliTestSupport.Run duplicate = merge(tmp.resolve("m2"), s0, s1, s1);
        assertEquals(2, duplicate.exit());
        assertTrue(duplicate.err().contains(s1 + ": shard 1/3 again (also " + s1 + ")"), duplicate.err());

        CliTestSupport.Run gap = merge(tmp.resolve("m3"), s0, s2);
        assertEquals(2, gap.exit());
        assertTrue(gap.err().contains("missing shard 1/3"), gap.err());

        Path limited = tmp.resolve("limited");
        assertEquals(0, eval(FIXTURE, limited, "--shard", "1/3", "--limit", "10").exit());
        CliTestSupport.Run limit = merge(tmp.resolve("m4"), s0, limited, s2);
        assertEquals(2, limit.exit());
        assertTrue(limit.err().contains(limited + ": shard.json field limit is 10, but 0 in " + s0), limit.err());

        Path grown = tmp.resolve("grown.jsonl"), g1 = tmp.resolve("g1");
        Files.writeString(grown, Files.readString(FIXTURE) + "{\"id\": \"q99\", \"question\": \"1+1?\", \"answer\": \"#### 2\"}\n");
        assertEquals(0, eval(grown, g1, "--shard", "1/3").exit());
        CliTestSupport.Run data = merge(tmp.resolve("m5"), s0, g1, s2);
        assertEquals(2, data.exit());
        assertTrue(data.err().contains(g1 + ": shard.json field data"), data.err());

        // a shard that did not finish: a results line removed
        List<String> lines = new ArrayList<>(Files.readAllLines(s2.resolve("results.jsonl")));
        lines.remove(0);
        Files.write(s2.resolve("results.jsonl"), lines);
        CliTestSupport.Run unfinished = merge(tmp.resolve("m6"), s0, s1, s2);
        assertEquals(2, unfinished.exit());
        assertTrue(unfinished.err().contains(s2 + ": results.jsonl has "), unfinished.err());
        assertTrue(unfinished.err().lines().count() == 1, unfinished.err());
    }

    @Test
    void badShardFlags() throws IOException {
        for (String bad : List.of("3/3", "-1/2", "1", "x/2", "0/0")) {
            CliTestSupport.Run r = eval(FIXTURE, tmp.resolve("bad"), "--shard", bad);
            assertEquals(2, r.exit(), bad);
            assertTrue(r.err().startsWith("relat: --shard: "), r.err());
        }
        Path s0 = tmp.resolve("s0");
        assertEquals(0, eval(FIXTURE, s0, "--shard", "0/2").exit());
        CliTestSupport.Run other = eval(FIXTURE, s0, "--shard", "1/2");
        assertEquals(2, other.exit());
        assertTrue(other.err().contains("holds shard 0/2"), other.err());
        CliTestSupport.Run unsharded = eval(FIXTURE, s0);
        assertEquals(2, unsharded.exit());
        assertTrue(unsharded.err().contains("holds shard 0/2"), unsharded.err());
        CliTestSupport.Run notAShard = merge(tmp.resolve("m"), s0, tmp.resolve("m"));
        assertEquals(2, notAShard.exit());
        CliTestSupport.Run noData = CliTestSupport.run(engines(), null, "eval", "--model", model.toString());
        assertEquals(2, noData.exit());
        assertTrue(noData.err().contains("--data"), noData.err());
    }
}
