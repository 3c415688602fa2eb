package dev.relat.bench;

import dev.relat.ops.AddRmsNorm;
import dev.relat.ops.DType;
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
 * Residual add + RMSNorm on {@code device} ({@link BenchDevice}). Baseline forward: s = x + r, then
 * libtorch's rms_norm(s). Baseline backward: the rms_norm backward composition (see RmsNormBench)
 * plus ds_next. Baselines: released each call (rms_norm has no out variant). relat writes into
 * preallocated outputs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class AddRmsNormBench {
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
    private Tensor x, r, weight, s, y, rstd, rstdColumn, dy, dsNext, ds;
    private long[] normalizedShape;
    private TensorOptional weightOptional;
    private DoubleOptional eps;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        long[] shape = {tokens, hidden};
        x = torch.randn(shape, f32).to(dtype.scalarType());
        r = torch.randn(shape, f32).to(dtype.scalarType());
        weight = torch.randn(new long[] {hidden}, f32).to(dtype.scalarType());
        dy = torch.randn(shape, f32).to(dtype.scalarType());
        dsNext = torch.randn(shape, f32).to(dtype.scalarType());
        s = torch.empty_like(x);
        y = torch.empty_like(x);
        ds = torch.empty_like(x);
        rstd = torch.empty(new long[] {tokens}, f32, new MemoryFormatOptional());
        AddRmsNorm.forward(x, r, weight, 1e-6, s, y, rstd);
        rstdColumn = rstd.view(tokens, 1);
        normalizedShape = new long[] {hidden};
        weightOptional = new TensorOptional(weight);
        eps = new DoubleOptional(1e-6);
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> AddRmsNorm.forward(x, r, weight, 1e-6, s, y, rstd));
        return y;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, () -> torch.rms_norm(x.add(r), normalizedShape, weightOptional, eps));
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> AddRmsNorm.backward(dy, dsNext, s, weight, rstd, ds, null, null));
        return ds;
    }

    @Benchmark
    public void libtorchBackward(Blackhole bh) {
        dev.released(bh, this::backwardComposition);
    }

    private Tensor backwardComposition() {
        Tensor sf = s.to(torch.ScalarType.Float);
        Tensor g = dy.to(torch.ScalarType.Float).mul(weight.to(torch.ScalarType.Float));
        Tensor dot = g.mul(sf).sum(new long[] {-1}, true, new ScalarTypeOptional());
        Tensor k = dot.mul(rstdColumn.pow(new Scalar(3))).div(new Scalar(hidden));
        return g.mul(rstdColumn).sub(sf.mul(k)).add(dsNext.to(torch.ScalarType.Float)).to(dtype.scalarType());
    }
}
