package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.QkNorm;
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
 * Qwen3 QK-norm on {@code device} ({@link BenchDevice}): q of [tokens, heads, 128] (Qwen3-0.6B: 16
 * query heads, Qwen3-8B: 32), relat against libtorch's rms_norm over the last dimension; backward as
 * in RmsNormBench. Baselines: released each call (rms_norm has no out variant). relat writes into
 * preallocated outputs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class QkNormBench {
    private static final long HEAD_DIM = 128;

    @Param({"16", "32"})
    public long heads;

    @Param({"1", "512"})
    public long tokens;

    @Param({"F32", "BF16"})
    public DType dtype;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor q, weight, y, rstd, rstdColumn, dy, dq;
    private long[] normalizedShape;
    private TensorOptional weightOptional;
    private DoubleOptional eps;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        long[] shape = {tokens, heads, HEAD_DIM};
        q = torch.randn(shape, f32).to(dtype.scalarType());
        dy = torch.randn(shape, f32).to(dtype.scalarType());
        weight = torch.randn(new long[] {HEAD_DIM}, f32).to(dtype.scalarType());
        y = torch.empty_like(q);
        dq = torch.empty_like(q);
        rstd = torch.empty(new long[] {tokens * heads}, f32, new MemoryFormatOptional());
        QkNorm.forward(q, weight, 1e-6, y, rstd);
        rstdColumn = rstd.view(tokens, heads, 1);
        normalizedShape = new long[] {HEAD_DIM};
        weightOptional = new TensorOptional(weight);
        eps = new DoubleOptional(1e-6);
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> QkNorm.forward(q, weight, 1e-6, y, null));
        return y;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, () -> torch.rms_norm(q, normalizedShape, weightOptional, eps));
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> QkNorm.backward(dy, q, weight, rstd, dq, null, null));
        return dq;
    }

    @Benchmark
    public void libtorchBackward(Blackhole bh) {
        dev.released(bh, this::backwardComposition);
    }

    private Tensor backwardComposition() {
        Tensor xf = q.to(torch.ScalarType.Float);
        Tensor g = dy.to(torch.ScalarType.Float).mul(weight.to(torch.ScalarType.Float));
        Tensor dot = g.mul(xf).sum(new long[] {-1}, true, new ScalarTypeOptional());
        Tensor k = dot.mul(rstdColumn.pow(new Scalar(3))).div(new Scalar(HEAD_DIM));
        return g.mul(rstdColumn).sub(xf.mul(k)).to(dtype.scalarType());
    }
}
