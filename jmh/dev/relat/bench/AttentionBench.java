package dev.relat.bench;

import dev.relat.ops.Attention;
import dev.relat.ops.DType;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.LongOptional;
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
 * Training attention on {@code device} ({@link BenchDevice}) at Qwen3-0.6B-like sizes (16 query
 * heads, 8 KV heads, D = 128, 256 queries after a 200-position prefix): relat's kernels against the explicit libtorch
 * composition (repeat_interleave for GQA, matmul, additive prefix/causal mask, softmax, matmul;
 * autograd for the backward) and against torch's scaled_dot_product_attention (boolean mask,
 * enable_gqa), all from the same token-major [T, H, D] tensors. "forwardBackward" runs the
 * forward and then the backward for a given dout, as a training step does. Baselines: released
 * each call (the gradients autograd accumulates into the leaves stay, as in a training loop). relat
 * writes into preallocated outputs and workspace.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class AttentionBench {
    @Param({"F32", "BF16"})
    public DType dtype;

    @Param({"256"})
    public long tq;

    @Param({"200"})
    public long prefix;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private static final long HQ = 16, HKV = 8, D = 128;

    private BenchDevice dev;
    private double scale;
    private Tensor q, k, v, dout, out, lse, dq, dk, dv, workspace;
    private Tensor qg, kg, vg;            // leaf tensors with requires_grad for the libtorch paths
    private Tensor additiveMask, boolMask;

    @Setup
    public void setup() {
        long tk = tq + prefix;
        scale = Attention.defaultScale(D);
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        torch.manual_seed(42);
        q = torch.randn(new long[] {tq, HQ, D}, f32).to(dtype.scalarType());
        k = torch.randn(new long[] {tk, HKV, D}, f32).to(dtype.scalarType());
        v = torch.randn(new long[] {tk, HKV, D}, f32).to(dtype.scalarType());
        dout = torch.randn(new long[] {tq, HQ, D}, f32).to(dtype.scalarType());
        out = torch.empty_like(q);
        lse = torch.zeros(new long[] {tq, HQ}, f32);
        dq = torch.empty_like(q);
        dk = torch.empty_like(k);
        dv = torch.empty_like(v);
        workspace = torch.zeros(new long[] {(Attention.backwardWorkspaceBytes(q, k, v) + 3) / 4}, f32);
        qg = q.detach().clone().requires_grad_(true);
        kg = k.detach().clone().requires_grad_(true);
        vg = v.detach().clone().requires_grad_(true);
        boolMask = torch.ones(new long[] {tq, tk}, dev.options(torch.ScalarType.Bool)).tril(prefix);
        additiveMask = torch.zeros(new long[] {tq, tk}, f32).masked_fill(boolMask.logical_not(),
                new Scalar(Double.NEGATIVE_INFINITY)).to(dtype.scalarType());
    }

    private Tensor composition(Tensor qq, Tensor kk, Tensor vv) {
        long g = HQ / HKV;
        Tensor qh = qq.permute(1, 0, 2);
        Tensor kh = kk.repeat_interleave(g, new LongOptional(1), new LongOptional()).permute(1, 2, 0);
        Tensor vh = vv.repeat_interleave(g, new LongOptional(1), new LongOptional()).permute(1, 0, 2);
        Tensor scores = torch.matmul(qh, kh).mul(new Scalar(scale)).add(additiveMask);
        return torch.matmul(torch.softmax(scores, -1), vh).permute(1, 0, 2);
    }

    private Tensor sdpa(Tensor qq, Tensor kk, Tensor vv) {
        Tensor o = torch.scaled_dot_product_attention(qq.permute(1, 0, 2).unsqueeze(0), kk.permute(1, 0, 2).unsqueeze(0),
                vv.permute(1, 0, 2).unsqueeze(0), new TensorOptional(boolMask), 0.0, false, new DoubleOptional(scale), true);
        return o.squeeze(0).permute(1, 0, 2);
    }

    @Benchmark
    public Tensor relatForward() {
        dev.run(() -> Attention.forward(q, k, v, scale, out, lse));
        return out;
    }

    @Benchmark
    public void libtorchForward(Blackhole bh) {
        dev.released(bh, () -> composition(q, k, v));
    }

    @Benchmark
    public void sdpaForward(Blackhole bh) {
        dev.released(bh, () -> sdpa(q, k, v));
    }

    @Benchmark
    public Tensor relatForwardBackward() {
        dev.run(() -> {
            Attention.forward(q, k, v, scale, out, lse);
            Attention.backward(dout, q, k, v, out, lse, scale, dq, dk, dv, false, workspace);
        });
        return dk;
    }

    @Benchmark
    public void libtorchForwardBackward(Blackhole bh) {
        dev.released(bh, () -> {
            composition(qg, kg, vg).backward(dout, new BoolOptional(), false, new TensorArrayRefOptional());
            return kg.grad();
        });
    }

    @Benchmark
    public void sdpaForwardBackward(Blackhole bh) {
        dev.released(bh, () -> {
            sdpa(qg, kg, vg).backward(dout, new BoolOptional(), false, new TensorArrayRefOptional());
            return kg.grad();
        });
    }
}
