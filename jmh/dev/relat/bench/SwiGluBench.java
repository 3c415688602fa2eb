package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.SwiGlu;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
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
 * SwiGLU on {@code device} ({@link BenchDevice}) at the Qwen3 intermediate widths, relat against
 * libtorch on the same tensors: forward silu(gate) * up (two inputs, and from the fused [gate | up]
 * projection via chunk views); backward with libtorch's own silu_backward:
 * dgate = silu_backward(dout * up, gate), dup = dout * silu(gate) (what autograd runs, without the
 * graph). Baselines: released each call (chains of temporaries, as in Python). relat writes into
 * preallocated outputs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class SwiGluBench {
    @Param({"3072", "12288"})
    public long intermediate;

    @Param({"1", "512"})
    public long tokens;

    @Param({"F32", "BF16"})
    public DType dtype;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor gate, up, gu, gv, uv, out, dout, dgate, dup;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        long[] shape = {tokens, intermediate};
        gate = torch.randn(shape, f32).to(dtype.scalarType());
        up = torch.randn(shape, f32).to(dtype.scalarType());
        dout = torch.randn(shape, f32).to(dtype.scalarType());
        gu = torch.randn(new long[] {tokens, 2 * intermediate}, f32).to(dtype.scalarType());
        TensorVector halves = gu.chunk(2, -1);
        gv = halves.get(0);
        uv = halves.get(1);
        out = torch.empty_like(gate);
        dgate = torch.empty_like(gate);
        dup = torch.empty_like(gate);
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> SwiGlu.forward(gate, up, out));
        return out;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, () -> torch.silu(gate).mul(up));
    }

    @Benchmark
    public Tensor relatFused() {
        dev.run(() -> SwiGlu.forwardFused(gu, out));
        return out;
    }

    @Benchmark
    public void libtorchFused(Blackhole bh) {
        dev.released(bh, () -> torch.silu(gv).mul(uv));
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> SwiGlu.backward(dout, gate, up, dgate, dup));
        return dgate;
    }

    @Benchmark
    public void libtorchBackward(Blackhole bh) {
        dev.released(bh, () -> {
            bh.consume(torch.silu_backward(dout.mul(up), gate));
            return dout.mul(torch.silu(gate));
        });
    }
}
