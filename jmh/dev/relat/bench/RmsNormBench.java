package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.RmsNorm;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
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
 * RMSNorm, relat against libtorch on the same tensors, on {@code device} ({@link BenchDevice}).
 * Forward: libtorch's rms_norm. Backward (dx from the saved rstd): libtorch has no fused rms_norm
 * backward on the CPU, so the baseline is the composition autograd would run, written out without
 * the graph overhead, in fp32 like the kernel: g = dy * w; dx = rstd * g - x * rstd^3 * sum(g * x) / cols.
 * Baselines: released each call (rms_norm has no out variant; the backward is a chain of
 * temporaries), as in Python. relat writes into preallocated outputs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class RmsNormBench {
    @Param({"1024", "4096"})
    public long hidden;

    @Param({"1", "512"})
    public long tokens;

    @Param({"F32", "BF16"})
    public DType dtype;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor x;
    private Tensor weight;
    private Tensor y;
    private Tensor dy;
    private Tensor dx;
    private Tensor rstd;
    private Tensor rstdColumn;
    private long[] normalizedShape;
    private TensorOptional weightOptional;
    private DoubleOptional eps;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        x = torch.randn(new long[] {tokens, hidden}, f32).to(dtype.scalarType());
        weight = torch.randn(new long[] {hidden}, f32).to(dtype.scalarType());
        dy = torch.randn(new long[] {tokens, hidden}, f32).to(dtype.scalarType());
        y = torch.empty_like(x);
        dx = torch.empty_like(x);
        rstd = torch.empty(new long[] {tokens}, f32, new MemoryFormatOptional());
        RmsNorm.forward(x, weight, 1e-6, y, rstd);
        rstdColumn = rstd.view(tokens, 1);
        normalizedShape = new long[] {hidden};
        weightOptional = new TensorOptional(weight);
        eps = new DoubleOptional(1e-6);
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> RmsNorm.forward(x, weight, 1e-6, y, null));
        return y;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, () -> torch.rms_norm(x, normalizedShape, weightOptional, eps));
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> RmsNorm.backward(dy, x, weight, rstd, dx, null, null));
        return dx;
    }

    @Benchmark
    public void libtorchBackward(Blackhole bh) {
        dev.released(bh, this::backwardComposition);
    }

    private Tensor backwardComposition() {
        Tensor xf = x.to(torch.ScalarType.Float);
        Tensor g = dy.to(torch.ScalarType.Float).mul(weight.to(torch.ScalarType.Float));
        Tensor dot = g.mul(xf).sum(new long[] {-1}, true, new ScalarTypeOptional());
        Tensor k = dot.mul(rstdColumn.pow(new Scalar(3))).div(new Scalar(hidden));
        return g.mul(rstdColumn).sub(xf.mul(k)).to(dtype.scalarType());
    }
}
