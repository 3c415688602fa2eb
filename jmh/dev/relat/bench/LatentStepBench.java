package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.LatentStep;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
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
 * The soft latent step on {@code device} ({@link BenchDevice}), one question (B = 1), d = 1024,
 * V = 151,936: relat's fused kernels against the libtorch composition (matmul, softmax, matmul;
 * autograd for dL/dh) in the same run. {@code *Forward}: the step alone (the open-loop latent
 * chain); {@code *Step}: forward and backward (what a ReLAT update does per latent step).
 * {@code tied}: E == U. Baselines: released each call. relat writes into preallocated outputs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class LatentStepBench {
    @Param({"1"})
    public long batch;

    @Param({"1024"})
    public long hidden;

    @Param({"151936"})
    public long vocab;

    @Param({"F32", "BF16"})
    public DType dtype;

    @Param({"false", "true"})
    public boolean tied;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor h, u, emb, de, e, lse, e32, dh, uT;
    private final double tau = 1.0;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        torch.manual_seed(1);
        h = torch.randn(new long[] {batch, hidden}, f32).to(dtype.scalarType());
        u = torch.randn(new long[] {vocab, hidden}, f32).mul(new Scalar(2.0 / Math.sqrt(hidden)))
                .to(dtype.scalarType());
        emb = tied ? u : torch.randn(new long[] {vocab, hidden}, f32).mul(new Scalar(0.05)).to(dtype.scalarType());
        de = torch.randn(new long[] {batch, hidden}, f32).to(dtype.scalarType());
        e = torch.empty_like(h);
        dh = torch.empty_like(h);
        lse = torch.empty(new long[] {batch}, f32, new MemoryFormatOptional());
        e32 = torch.empty(new long[] {batch, hidden}, f32, new MemoryFormatOptional());
        uT = u.t();
    }

    @Benchmark
    public Tensor relatForward() {
        dev.run(() -> LatentStep.softForward(h, u, emb, tau, e, lse, e32));
        return e;
    }

    @Benchmark
    public void libtorchForward(Blackhole bh) {
        dev.released(bh, () -> torch.softmax(h.mm(uT).div(new Scalar(tau)), 1).mm(emb));
    }

    @Benchmark
    public Tensor relatStep() {
        dev.run(() -> {
            LatentStep.softForward(h, u, emb, tau, e, lse, e32);
            LatentStep.softBackward(h, u, emb, tau, lse, e32, de, dh);
        });
        return dh;
    }

    @Benchmark
    public void libtorchStep(Blackhole bh) {
        dev.released(bh, this::autogradStep);
    }

    private Tensor autogradStep() {
        Tensor hf = h.detach().requires_grad_(true);
        Tensor out = torch.softmax(hf.mm(uT).div(new Scalar(tau)), 1).mm(emb);
        out.backward(de, new BoolOptional(), false, new TensorArrayRefOptional());
        return hf.grad();
    }
}
