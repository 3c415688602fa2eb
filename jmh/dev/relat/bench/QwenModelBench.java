package dev.relat.bench;

import dev.relat.model.CheckpointWriter;
import dev.relat.model.ForwardBuffers;
import dev.relat.model.KvCache;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.model.ReferenceQwen;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.BenchmarkParams;

/**
 * Prefill and decode tokens/s on {@code device} ({@link BenchDevice}) for a Qwen3-0.6B-shaped
 * checkpoint with random fp32 weights (hidden 1024, intermediate 3072, 28 layers, 16 / 8 heads,
 * head_dim 128, vocab 151,936, tied; 0.6 B parameters, 2.4 GB), relat's QwenModel against the
 * plain-libtorch reference on the same weight tensors. fp32 because this CPU (AVX2, no AVX-512
 * BF16) has no fast bf16 GEMM.
 *
 * <p>The checkpoint is written once into java.io.tmpdir/relat-bench-qwen3-0.6b-fp32 (reused by
 * later forks and runs; delete it to reclaim 2.4 GB). Prefill: a 64-token prompt, logits of the
 * last position (both sides). Decode: one token after a 64-token context; relat reads its KV
 * cache, the reference (which has no cache) recomputes the 65-token sequence, as a plain libtorch
 * forward must; relat's decode step writes into one set of ForwardBuffers, as
 * {@code Generation.decode} does. Throughput is tokens per second. An operation takes seconds
 * here, so iterations are short (1 s: one operation or a few each) to keep the whole run near
 * five minutes.
 *
 * <p>On CUDA ({@code -p device=cuda}) the model loads onto the GPU and both sides run there (the
 * reference computes on the device of the weights it is given). Every method
 * releases what it allocates each call (PointerScope) and reads one logit back, which also waits
 * for the GPU.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgs = {"-Xmx2g"})
public class QwenModelBench {
    static final int PROMPT = 64;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private QwenModel model;
    private ReferenceQwen reference;
    private KvCache cache;
    private ForwardBuffers buffers;
    private long[] prompt;
    private long[] extended;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) throws IOException {
        dev = BenchDevice.of(device);
        boolean referenceMethod = params.getBenchmark().endsWith("Reference");
        QwenConfig config = CheckpointWriter.qwen3_0_6B("float32");
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "relat-bench-qwen3-0.6b-fp32");
        Path done = dir.resolve("complete");
        if (!Files.exists(done)) {
            CheckpointWriter.writeRandom(dir, config, 606, 1);
            Files.writeString(done, "seed 606\n");
        }
        model = QwenModel.load(dir, dev.device(), ScalarType.Float);
        if (referenceMethod) reference = new ReferenceQwen(config, model.weights().byName(), ScalarType.Float);
        cache = model.newCache(PROMPT + 8);
        buffers = model.newBuffers(1);
        Random r = new Random(1);
        prompt = new long[PROMPT];
        for (int i = 0; i < PROMPT; i++) prompt[i] = r.nextInt(151_000);
        extended = Arrays.copyOf(prompt, PROMPT + 1);
        extended[PROMPT] = 42;
        try (PointerScope scope = new PointerScope()) {
            model.lastLogits(cache, prompt);
        }
    }

    @Benchmark
    @OperationsPerInvocation(PROMPT)
    public float prefillRelat() {
        try (PointerScope scope = new PointerScope()) {
            cache.clear();
            Tensor logits = model.lastLogits(cache, prompt);
            return logits.select(1, 0).item_float();
        }
    }

    @Benchmark
    @OperationsPerInvocation(PROMPT)
    public float prefillReference() {
        try (PointerScope scope = new PointerScope()) {
            return reference.lastLogits(prompt).select(1, 0).item_float();
        }
    }

    @Benchmark
    public float decodeRelat() {
        try (PointerScope scope = new PointerScope()) {
            cache.truncate(PROMPT);
            return model.lastLogits(cache, model.ids(new long[] {42}), null, buffers).select(1, 0).item_float();
        }
    }

    @Benchmark
    public float decodeReference() {
        try (PointerScope scope = new PointerScope()) {
            return reference.lastLogits(extended).select(1, 0).item_float();
        }
    }
}
