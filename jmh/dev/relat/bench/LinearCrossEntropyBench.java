package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.LinearCrossEntropy;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
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
 * Fused linear cross-entropy (forward + dL/dh) on {@code device} ({@link BenchDevice}) against, in
 * the same run:
 * <ul>
 *   <li>{@code gemms}: the two GEMMs its math needs, logits = H U^T and dH = dlogits U, as libtorch
 *       mm_out into preallocated outputs (the floor a fused kernel is held to: at most 1.2x);</li>
 *   <li>{@code libtorch}: what a user writes with libtorch alone, linear + cross_entropy (mean,
 *       ignore_index) + backward, for dL/dh, released each call.</li>
 * </ul>
 * Default size T = 128 counted tokens, d = 1024, V = 151,936 (the Qwen vocabulary): 80 GFLOP per
 * call, under a second on two idle cores, so a run stays within a few minutes. Example:
 * {@code ./relat bench LinearCrossEntropyBench -p dtype=F32}; {@code -p cpuGemm=AUTO,BUILTIN} adds
 * relat's built-in micro-kernels next to the default OpenBLAS tile products.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class LinearCrossEntropyBench {
    @Param({"128"})
    public long tokens;

    @Param({"1024"})
    public long hidden;

    @Param({"151936"})
    public long vocab;

    @Param({"F32", "BF16"})
    public DType dtype;

    /** Intra-op threads for both libtorch and relat (0: every core, or -Drelat.threads). */
    @Param({"0"})
    public int threads;

    /** The GEMM of relat's CPU tile products: AUTO (OpenBLAS under libtorch) or BUILTIN. */
    @Param({"AUTO"})
    public LinearCrossEntropy.CpuGemm cpuGemm;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private Tensor h, u, targets, loss, dh, logits, gradH;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        BenchDevice.configureThreads(threads);
        LinearCrossEntropy.useCpuGemm(cpuGemm);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        torch.manual_seed(1);
        h = torch.randn(new long[] {tokens, hidden}, f32).to(dtype.scalarType());
        u = torch.randn(new long[] {vocab, hidden}, f32).mul(new Scalar(2.0 / Math.sqrt(hidden)))
                .to(dtype.scalarType());
        long[] t = new long[(int) tokens];
        Random r = new Random(1);
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt((int) vocab);
        targets = dev.put(Tensor.create(t));
        loss = torch.empty(new long[] {}, f32, new MemoryFormatOptional());
        dh = torch.empty_like(h);
        logits = torch.empty(new long[] {tokens, vocab}, dev.options(dtype.scalarType()), new MemoryFormatOptional());
        gradH = torch.empty_like(h);
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> LinearCrossEntropy.forwardBackward(h, u, targets, LinearCrossEntropy.IGNORE_INDEX, loss, dh));
        return dh;
    }

    @Benchmark
    public Tensor gemms() {
        dev.run(() -> {
            torch.mm_out(logits, h, u.t());
            torch.mm_out(gradH, logits, u);
        });
        return gradH;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, this::userComposition);
    }

    private Tensor userComposition() {
        Tensor hf = h.detach().requires_grad_(true);
        Tensor l = torch.cross_entropy_loss(torch.linear(hf, u), targets, new TensorOptional(), 1,
                LinearCrossEntropy.IGNORE_INDEX, 0.0);
        l.backward(new Tensor(), new BoolOptional(), false, new TensorArrayRefOptional());
        return hf.grad();
    }
}
