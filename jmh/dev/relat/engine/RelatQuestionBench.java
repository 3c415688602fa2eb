package dev.relat.engine;

import dev.relat.bench.BenchDevice;
import dev.relat.model.CheckpointWriter;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Timeout;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One whole ReLAT question on {@code device} ({@link BenchDevice}; K = 16 latent steps, N = 5
 * updates, a 200-token question, 64 greedy answer tokens), relat's engine against the libtorch-autograd reference
 * ({@link ReferenceRelat#solve}: autograd, libtorch's AdamW, torch.cat key/value caches) on the same
 * weights, fp32. shape qwen3-0.6b is the Qwen3-0.6B shape (28 layers, 2.4 GB of random weights,
 * written once under java.io.tmpdir); qwen3-0.6b-4l keeps its widths and vocabulary with 4 layers,
 * for a quicker run.
 *
 * <p>Peak memory: each benchmark method runs in its own forked JVM; before each iteration the
 * process's peak resident set is reset (/proc/self/clear_refs) and after it the peak above the
 * resident set at the start of the iteration is printed as "peak extra RSS" (host memory only: on
 * CUDA it does not count GPU memory).
 *
 * <p>On CUDA ({@code -p device=cuda}) the model loads onto the GPU and the engine runs there (the
 * engine follows its model's device), and so does {@code libtorchAutograd} (the reference computes
 * on the device of the weights it is given). relat's method waits for the GPU before returning;
 * the reference reads its losses and tokens back, which waits too.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 0)
@Measurement(iterations = 2)
@Timeout(time = 2, timeUnit = TimeUnit.HOURS) // one 28-layer reference question takes tens of minutes here
// JavaCPP's default native-memory guard (4 x -Xmx) counts the resident 2.4 GB of weights and trips
// on the 28-layer shape; the bench measures peak RSS itself.
@Fork(value = 1, jvmArgs = {"-Xmx2g", "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0"})
public class RelatQuestionBench {
    @Param({"qwen3-0.6b"})
    public String shape;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Engine engine;
    private QwenModel model;
    private Options options;
    private Prompts prompts;
    private Set<Long> stops;
    private long rssBefore;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        dev = BenchDevice.of(device);
        QwenConfig full = CheckpointWriter.qwen3_0_6B("float32");
        QwenConfig config = shape.equals("qwen3-0.6b") ? full
                : CheckpointWriter.config("qwen3", 1024, 3072, 4, 16, 8, 128, CheckpointWriter.QWEN_VOCAB, true,
                        "float32");
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "relat-bench-" + shape + "-fp32");
        Path done = dir.resolve("complete");
        if (!Files.exists(done)) {
            CheckpointWriter.writeRandom(dir, config, 606, 1);
            Files.writeString(done, "seed 606\n");
        }
        model = QwenModel.load(dir, dev.device(), ScalarType.Float);
        QwenTokenizer tokenizer = QwenTokenizer.load(dir);
        engine = new Engine(model, tokenizer);
        options = Options.builder().latentSteps(16).updateSteps(5).maxNewTokens(64).build();
        prompts = Prompts.of(tokenizer, question(tokenizer, 200), options);
        stops = Set.of(); // 64 answer tokens on both sides
    }

    /** A question of exactly n tokens (words cycled, cut at n tokens). */
    static String question(QwenTokenizer tokenizer, int n) {
        String[] words = ("A farmer has 17 sheep and buys 5 more every week; each sheep eats 2 kg of hay a day "
                + "and hay costs 3 dollars per kg. After how many weeks will the weekly hay bill exceed 900 "
                + "dollars, and what is the bill in that week?").split(" ");
        StringBuilder text = new StringBuilder();
        for (int i = 0; tokenizer.encode(text.toString()).length < n; i++) {
            text.append(i == 0 ? "" : " ").append(words[i % words.length]);
        }
        long[] ids = tokenizer.encode(text.toString());
        return tokenizer.decode(Arrays.copyOf(ids, n), true);
    }

    @Setup(Level.Iteration)
    public void resetPeak() throws IOException {
        System.gc();
        rssBefore = status("VmRSS:");
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            // not Linux: the peak then covers the whole run
        }
    }

    @TearDown(Level.Iteration)
    public void printPeak() throws IOException {
        System.out.printf("%n[%s] peak extra RSS: %.0f MiB%n", shape, (status("VmHWM:") - rssBefore) / 1048576.0);
    }

    private static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field)) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
        return -1;
    }

    @Benchmark
    public Result relat() {
        Result result = engine.solve(prompts, options, PhaseListener.NONE);
        dev.sync();
        return result;
    }

    @Benchmark
    public ReferenceRelat.Solved libtorchAutograd() {
        try (PointerScope scope = new PointerScope();
                Lora init = new Lora(model.config(), EnumSet.allOf(Projection.class), options.loraRank(),
                        options.loraAlpha(), options.seed(), model.device())) {
            return new ReferenceRelat(model.config(), model.weights().byName(), init, ScalarType.Float)
                    .solve(prompts, options, stops);
        }
    }
}
