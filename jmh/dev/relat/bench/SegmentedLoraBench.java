package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.SegmentedLora;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
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
 * Segmented LoRA on {@code device} ({@link BenchDevice}): {@code questions} questions of
 * {@code rowsPerQuestion} rows each, one adapter per question, at Qwen3-0.6B's gate/up projection
 * (in 1024, out 3072). relat's one call against what a libtorch user writes: a loop over the
 * questions with matmuls (fp32 math, the delta rounded to the activations' dtype then added, as the
 * kernel does). Forward: y += scale * (x a^T) b^T; backward: da, db and dx accumulated. relat
 * writes into preallocated outputs ({@link BenchDevice#run}); the baselines' temporaries are
 * released each call ({@link BenchDevice#released}), their accumulations go into the same
 * preallocated outputs. libtorch runs on {@code threads} intra-op threads (0 = every core, or
 * -Drelat.threads), relat's kernels on every core.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class SegmentedLoraBench {
    /** name:in x out of the projection. */
    @Param({"0.6b-gateup:1024x3072"})
    public String shape;

    @Param({"8", "16"})
    public int rank;

    @Param({"1", "4", "8", "16"})
    public int questions;

    @Param({"1", "200"})
    public int rowsPerQuestion;

    @Param({"BF16"})
    public DType dtype;

    @Param({"0"})
    public int threads;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor x, dy, a, b, offsets, y, dx, da, db;
    private long[] bounds;
    private final double scale = 2.0;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        BenchDevice.configureThreads(threads);
        String[] io = shape.substring(shape.indexOf(':') + 1).split("x");
        long in = Long.parseLong(io[0]);
        long out = Long.parseLong(io[1]);
        long rows = (long) questions * rowsPerQuestion;
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        x = torch.randn(new long[] {rows, in}, f32).to(dtype.scalarType());
        dy = torch.randn(new long[] {rows, out}, f32).to(dtype.scalarType());
        a = torch.randn(new long[] {questions, rank, in}, f32).div(new Scalar(Math.sqrt(in)));
        b = torch.randn(new long[] {questions, out, rank}, f32).div(new Scalar(Math.sqrt(rank)));
        bounds = new long[questions + 1];
        for (int q = 0; q < questions; q++) bounds[q + 1] = bounds[q] + rowsPerQuestion;
        offsets = dev.put(torch.tensor(bounds));
        y = torch.zeros(new long[] {rows, out}, f32).to(dtype.scalarType());
        dx = torch.zeros(new long[] {rows, in}, f32).to(dtype.scalarType());
        da = torch.zeros(new long[] {questions, rank, in}, f32);
        db = torch.zeros(new long[] {questions, out, rank}, f32);
    }

    @Benchmark
    public Tensor relatForward() {
        dev.run(() -> SegmentedLora.forward(x, a, b, offsets, scale, y));
        return y;
    }

    @Benchmark
    public void libtorchForward(Blackhole bh) {
        dev.released(bh, () -> {
            Scalar s = new Scalar(scale);
            for (int q = 0; q < questions; q++) {
                long t0 = bounds[q];
                long n = bounds[q + 1] - t0;
                Tensor xs = x.narrow(0, t0, n).to(torch.ScalarType.Float);
                Tensor u = torch.mm(xs, a.select(0, q).t());
                y.narrow(0, t0, n).add_(torch.mm(u, b.select(0, q).t()).mul_(s).to(dtype.scalarType()));
            }
            return y;
        });
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> SegmentedLora.backward(x, dy, a, b, offsets, scale, da, db, dx));
        return da;
    }

    @Benchmark
    public void libtorchBackward(Blackhole bh) {
        dev.released(bh, () -> {
            Scalar s = new Scalar(scale);
            Scalar one = new Scalar(1.0);
            for (int q = 0; q < questions; q++) {
                long t0 = bounds[q];
                long n = bounds[q + 1] - t0;
                Tensor xs = x.narrow(0, t0, n).to(torch.ScalarType.Float);
                Tensor dys = dy.narrow(0, t0, n).to(torch.ScalarType.Float);
                Tensor aq = a.select(0, q);
                Tensor g = torch.mm(dys, b.select(0, q));
                Tensor u = torch.mm(xs, aq.t());
                da.select(0, q).addmm_(g.t(), xs, one, s);
                db.select(0, q).addmm_(dys.t(), u, one, s);
                dx.narrow(0, t0, n).add_(torch.mm(g, aq).mul_(s).to(dtype.scalarType()));
            }
            return da;
        });
    }
}
