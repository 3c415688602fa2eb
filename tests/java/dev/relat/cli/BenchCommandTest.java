package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.relat.ops.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** relat bench: pairing relat with its baselines, the Markdown table, and one real (tiny) JMH run. */
class BenchCommandTest {
    @TempDir
    Path tmp;

    private static JsonObject result(String benchmark, String mode, Map<String, String> params, double median,
            double mean, String unit) {
        JsonObject o = new JsonObject();
        o.addProperty("benchmark", "dev.relat.bench." + benchmark);
        o.addProperty("mode", mode);
        JsonObject p = new JsonObject();
        params.forEach(p::addProperty);
        o.add("params", p);
        JsonObject m = new JsonObject();
        m.addProperty("score", mean);
        m.addProperty("scoreError", 0.5);
        JsonObject pct = new JsonObject();
        pct.addProperty("50.0", median);
        m.add("scorePercentiles", pct);
        m.addProperty("scoreUnit", unit);
        o.add("primaryMetric", m);
        return o;
    }

    private Path fixture() throws IOException {
        JsonArray a = new JsonArray();
        Map<String, String> small = Map.of("hidden", "1024"), big = Map.of("hidden", "4096");
        a.add(result("RmsNormBench.libtorch", "avgt", small, 30, 31, "us/op"));
        a.add(result("RmsNormBench.relat", "avgt", small, 10, 11, "us/op"));
        a.add(result("RmsNormBench.libtorch", "avgt", big, 100, 101, "us/op"));
        a.add(result("RmsNormBench.relat", "avgt", big, 50, 52, "us/op"));
        a.add(result("AttentionBench.relatForward", "avgt", Map.of(), 2, 2, "ms/op"));
        a.add(result("AttentionBench.libtorchForward", "avgt", Map.of(), 6, 6, "ms/op"));
        a.add(result("AttentionBench.sdpaForward", "avgt", Map.of(), 3, 3, "ms/op"));
        a.add(result("AttentionBench.relatForwardBackward", "avgt", Map.of(), 5, 5, "ms/op"));
        a.add(result("AttentionBench.libtorchForwardBackward", "avgt", Map.of(), 20, 20, "ms/op"));
        a.add(result("QwenModelBench.prefillRelat", "thrpt", Map.of(), 2.4, 2.4, "ops/s"));
        a.add(result("QwenModelBench.prefillReference", "thrpt", Map.of(), 1.2, 1.2, "ops/s"));
        a.add(result("QwenModelBench.decodeRelat", "thrpt", Map.of(), 0.9, 0.9, "ops/s"));
        a.add(result("QwenModelBench.decodeReference", "thrpt", Map.of(), 0.1, 0.1, "ops/s"));
        Path f = tmp.resolve("in.json");
        Files.writeString(f, a.toString());
        return f;
    }

    @Test
    void pairsFollowTheBenchmarkNames() throws IOException {
        List<BenchReport.Entry> entries = BenchReport.read(fixture());
        List<BenchReport.Pair> pairs = BenchReport.pairs(entries);
        List<String> names = pairs.stream().map(p -> p.relat().className() + "." + p.relat().method() + "/"
                + p.baseline().method() + " " + p.relat().paramText() + " " + String.format("%.2f", p.speedup())).toList();
        assertEquals(List.of(
                "RmsNormBench.relat/libtorch hidden=1024 3.00",
                "RmsNormBench.relat/libtorch hidden=4096 2.00",
                "AttentionBench.relatForward/libtorchForward  3.00",
                "AttentionBench.relatForward/sdpaForward  1.50",
                "AttentionBench.relatForwardBackward/libtorchForwardBackward  4.00",
                "QwenModelBench.prefillRelat/prefillReference  2.00",
                "QwenModelBench.decodeRelat/decodeReference  9.00"), names);
    }

    @Test
    void fromJsonWritesTheMarkdownTable() throws IOException {
        Path out = tmp.resolve("out");
        CliTestSupport.Run r = CliTestSupport.run(null, null, "bench", "--from-json", fixture().toString(), "--out",
                out.toString());
        assertEquals(0, r.exit(), r.err());
        String md = Files.readString(out.resolve(BenchCommand.RESULTS_MD));
        assertTrue(md.contains("| RmsNormBench | hidden=1024 | relat | libtorch | 30.000 us/op | 10.000 us/op | 3.00x |"), md);
        assertTrue(md.contains("| QwenModelBench | prefillRelat |  | thrpt | 2.400 | 2.400 ± 0.5000 | ops/s |"), md);
        assertTrue(Files.isRegularFile(out.resolve(BenchCommand.RESULTS_JSON)));
    }

    @Test
    void refusesResultOptionsItSetsItself() {
        CliTestSupport.Run r = CliTestSupport.run(null, null, "bench", "-rf", "csv", "X");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("sets -rf itself"), r.err());
    }

    @Test
    void findsTheCudaDevicesTheJmhArgumentsAskFor() {
        assertEquals(List.of(), BenchCommand.cudaDevices(List.of("RmsNormBench", "-p", "dtype=F32", "-prof", "gc")));
        assertEquals(List.of(), BenchCommand.cudaDevices(List.of("-p", "device=cpu", "-p")));
        assertEquals(List.of("cuda"), BenchCommand.cudaDevices(List.of("-p", "device=cuda")));
        assertEquals(List.of("cuda:1"), BenchCommand.cudaDevices(List.of("X", "-p", "device=cpu,cuda:1", "-i", "1")));
        assertEquals(List.of("cuda"), BenchCommand.cudaDevices(List.of("-pdevice=cuda")));
        // another parameter whose value mentions cuda is not the device
        assertEquals(List.of(), BenchCommand.cudaDevices(List.of("-p", "shape=cuda", "device=cuda")));
    }

    /** Without CUDA, -p device=cuda stops with one line before JMH starts (no child JVM, no output folder). */
    @Test
    void refusesCudaWithoutCudaBeforeStartingJmh() {
        assumeFalse(Backend.cudaAvailable(), "this machine has CUDA: the refusal does not apply");
        Path out = tmp.resolve("cuda");
        CliTestSupport.Run r = CliTestSupport.run(null, null, "bench", "--out", out.toString(), "RmsNormBench",
                "-p", "device=cpu,cuda:0", "-i", "1");
        assertEquals(1, r.exit(), r.out() + r.err());
        assertEquals("relat bench: device=cuda:0: no CUDA device (libtorch sees none / librelat_cuda not built);"
                + " run on a CUDA build with -Pcuda", r.err().strip());
        assertFalse(Files.exists(out));
    }

    /**
     * A real JMH run in a child JVM on this test JVM's classpath: one short iteration of
     * RmsNormBench. It checks the plumbing, not speed, so it ignores JMH's lock (another JMH run on
     * a shared machine must not fail this test).
     */
    @Test
    void runsJmhInAChildJvm() throws IOException {
        Path out = tmp.resolve("jmh");
        CliTestSupport.Run r = CliTestSupport.run(null, null, "bench", "--classpath", System.getProperty("java.class.path"),
                "--jvm-opt=-Djmh.ignoreLock=true",
                // RmsNormBench's forward pair only (not AddRmsNormBench, not the backward methods)
                "--out", out.toString(), "\\.RmsNormBench\\.(relat|libtorch)$",
                "-p", "hidden=1024", "-p", "tokens=1", "-p", "dtype=F32", "-f", "0", "-wi", "0", "-i", "1", "-r", "100ms");
        assertEquals(0, r.exit(), r.out() + r.err());
        List<BenchReport.Entry> entries = BenchReport.read(out.resolve(BenchCommand.RESULTS_JSON));
        assertEquals(2, entries.size(), entries.toString());
        String md = Files.readString(out.resolve(BenchCommand.RESULTS_MD));
        assertTrue(md.contains("| RmsNormBench | device=cpu dtype=F32 hidden=1024 tokens=1 | relat | libtorch |"), md);
    }
}
