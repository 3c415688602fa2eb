package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.Gemv;
import java.util.concurrent.TimeUnit;
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

/**
 * The few-row linear on {@code device} ({@link BenchDevice}) at Qwen3 projection shapes, relat
 * against libtorch on the same tensors, both writing into preallocated outputs (a fresh libtorch
 * result would also time page faults): forward y = x w^T ({@code torch.mm_out(y, x, w.t())}, what
 * {@code torch.linear} runs) and backward dx = dy w ({@code torch.mm_out(dx, dy, w)}). {@code copy}
 * copies a tensor of the weight's size: its time t gives the machine's stream bandwidth
 * 2 * bytes / t in the same run, and the floor of a GEMV is the weight bytes over that bandwidth
 * (docs/benchmarks.md). libtorch runs on {@code threads} intra-op threads (0 = every core, or
 * -Drelat.threads), relat's kernels on every core. Baselines: {@code _out} into preallocated
 * outputs (mm_out, copy_).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class GemvBench {
    /** name:n x k of the weight. */
    @Param({"0.6b-qkv:4096x1024", "0.6b-down:1024x3072", "0.6b-lmhead:151936x1024", "8b-qkv:6144x4096",
            "8b-down:4096x12288"})
    public String shape;

    @Param({"F32", "BF16"})
    public DType dtype;

    @Param({"1"})
    public int rows;

    @Param({"0"})
    public int threads;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor w, wT, x, y, dy, dx, copySource, copyTarget;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        BenchDevice.configureThreads(threads);
        String[] nk = shape.substring(shape.indexOf(':') + 1).split("x");
        long n = Long.parseLong(nk[0]);
        long k = Long.parseLong(nk[1]);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        w = torch.randn(new long[] {n, k}, f32).to(dtype.scalarType());
        wT = w.t();
        x = torch.randn(new long[] {rows, k}, f32).to(dtype.scalarType());
        dy = torch.randn(new long[] {rows, n}, f32).to(dtype.scalarType());
        y = torch.empty_like(dy);
        dx = torch.empty_like(x);
        copySource = torch.randn(new long[] {n, k}, f32).to(dtype.scalarType());
        copyTarget = torch.empty_like(copySource);
    }

    @Benchmark
    public Tensor relatForward() {
        dev.run(() -> Gemv.forward(x, w, y));
        return y;
    }

    @Benchmark
    public Tensor libtorchForward() {
        dev.run(() -> torch.mm_out(y, x, wT));
        return y;
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> Gemv.backward(dy, w, dx));
        return dx;
    }

    @Benchmark
    public Tensor libtorchBackward() {
        dev.run(() -> torch.mm_out(dx, dy, w));
        return dx;
    }

    @Benchmark
    public Tensor copy() {
        dev.run(() -> copyTarget.copy_(copySource));
        return copyTarget;
    }
}
