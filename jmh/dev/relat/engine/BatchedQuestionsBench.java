package dev.relat.engine;

import dev.relat.bench.BenchDevice;
import dev.relat.model.CheckpointWriter;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
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
 * Questions per hour of batched ReLAT ({@link Engine#solveAll}) on {@code device}: B different
 * 200-token questions solved together, each with its own adapter (K = 16 latent steps, N = 5
 * updates, 64 greedy answer tokens at most), fp32, Qwen3-0.6B widths and vocabulary with 4 layers
 * (the checkpoint of {@link RelatQuestionBench}'s qwen3-0.6b-4l shape). The score is seconds per
 * batch: questions per hour = 3600 B / score, and its ratio to B = 1 is the gain of batching. Each
 * iteration also prints the peak resident memory above its start, per question ("peak extra RSS
 * per question"; host memory only) and the answer tokens decoded (a random model may stop early;
 * the count shows how much decoding was timed).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Timeout(time = 1, timeUnit = TimeUnit.HOURS)
@Fork(value = 1, jvmArgs = {"-Xmx2g", "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0"})
public class BatchedQuestionsBench {
    /** Questions solved together. */
    @Param({"1", "4", "8", "16"})
    public int batch;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Engine engine;
    private Options options;
    private List<String> questions;
    private long rssBefore;
    private int answerTokens;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        dev = BenchDevice.of(device);
        QwenConfig config = CheckpointWriter.config("qwen3", 1024, 3072, 4, 16, 8, 128, CheckpointWriter.QWEN_VOCAB,
                true, "float32");
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "relat-bench-qwen3-0.6b-4l-fp32");
        Path done = dir.resolve("complete");
        if (!Files.exists(done)) {
            CheckpointWriter.writeRandom(dir, config, 606, 1);
            Files.writeString(done, "seed 606\n");
        }
        QwenModel model = QwenModel.load(dir, dev.device(), ScalarType.Float);
        QwenTokenizer tokenizer = QwenTokenizer.load(dir);
        engine = new Engine(model, tokenizer);
        options = Options.builder().method(Method.RELAT).latentSteps(16).updateSteps(5).maxNewTokens(64).build();
        questions = new ArrayList<>();
        for (int b = 0; b < batch; b++) questions.add("Question " + (b + 1) + ": " + RelatQuestionBench.question(tokenizer, 196));
    }

    @Setup(Level.Iteration)
    public void resetPeak() throws IOException {
        System.gc();
        rssBefore = status("VmRSS:");
        answerTokens = 0;
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            // not Linux: the peak then covers the whole run
        }
    }

    @TearDown(Level.Iteration)
    public void printPeak() throws IOException {
        System.out.printf("%n[B=%d] peak extra RSS per question: %.0f MiB, answer tokens decoded: %d%n", batch,
                (status("VmHWM:") - rssBefore) / 1048576.0 / batch, answerTokens);
    }

    private static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field)) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
        return -1;
    }

    @Benchmark
    public List<Result> solveAll() {
        List<Result> results = engine.solveAll(questions, options);
        dev.sync();
        for (Result r : results) answerTokens += r.answerTokens();
        return results;
    }
}
