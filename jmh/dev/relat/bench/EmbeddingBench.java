package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.Embedding;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Embedding gather on {@code device} ({@link BenchDevice}) from a Qwen3-sized bf16 table (vocab
 * 151936), relat (host id check included) against libtorch's embedding, same ids. Baseline: released
 * each call (embedding has no out variant). relat writes into a preallocated output.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class EmbeddingBench {
    private static final long VOCAB = 151936;

    @Param({"1024", "4096"})
    public long hidden;

    @Param({"1", "512"})
    public long tokens;

    @Param({"BF16"})
    public DType dtype;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor table, ids, out;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        // Values do not matter to a gather; fill_ touches every page (randn of 622M elements takes
        // longer than the measurement).
        table = torch.empty(new long[] {VOCAB, hidden}, dev.options(dtype.scalarType()),
                new MemoryFormatOptional()).fill_(new Scalar(0.5));
        ids = torch.randint(VOCAB, new long[] {tokens}, dev.options(torch.ScalarType.Long));
        out = torch.empty(new long[] {tokens, hidden}, dev.options(dtype.scalarType()),
                new MemoryFormatOptional());
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> Embedding.forward(ids, table, out, null));
        return out;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, () -> torch.embedding(table, ids));
    }
}
