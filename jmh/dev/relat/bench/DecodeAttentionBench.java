package dev.relat.bench;

import dev.relat.ops.Attention;
import dev.relat.ops.DType;
import dev.relat.ops.DecodeAttention;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
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
 * Decode attention on {@code device} ({@link BenchDevice}) at Qwen3-0.6B-like sizes (16 query
 * heads, 8 KV heads, D = 128, one query) over a KV cache preallocated to 32768 positions and filled
 * to `length`: relat's split kernel against the libtorch composition a user would write (query
 * heads grouped per KV head by a reshape, matmul, softmax, matmul over the cache prefix) and
 * against scaled_dot_product_attention (enable_gqa). Baselines: released each call. relat writes
 * into a preallocated output and workspace.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class DecodeAttentionBench {
    @Param({"F32", "BF16"})
    public DType dtype;

    @Param({"4096", "32768"})
    public long length;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private static final long HQ = 16, HKV = 8, D = 128, CAPACITY = 32768;

    private BenchDevice dev;
    private double scale;
    private Tensor q, kCache, vCache, out, workspace;

    @Setup
    public void setup() {
        scale = Attention.defaultScale(D);
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        torch.manual_seed(7);
        q = torch.randn(new long[] {1, HQ, D}, f32).to(dtype.scalarType());
        kCache = torch.randn(new long[] {CAPACITY, HKV, D}, f32).to(dtype.scalarType());
        vCache = torch.randn(new long[] {CAPACITY, HKV, D}, f32).to(dtype.scalarType());
        out = torch.empty_like(q);
        workspace = torch.zeros(new long[] {DecodeAttention.workspaceBytes(1, HQ, D, length, false) / 4}, f32);
    }

    @Benchmark
    public Tensor relat() {
        dev.run(() -> DecodeAttention.forward(q, kCache, vCache, null, length, scale, out, workspace));
        return out;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, this::composition);
    }

    private Tensor composition() {
        Tensor qh = q.reshape(HKV, HQ / HKV, D);                       // [hkv, g, D]
        Tensor k = kCache.narrow(0, 0, length).permute(1, 2, 0);      // [hkv, D, len]
        Tensor v = vCache.narrow(0, 0, length).permute(1, 0, 2);      // [hkv, len, D]
        Tensor p = torch.softmax(torch.matmul(qh, k).mul(new Scalar(scale)), -1);
        return torch.matmul(p, v).reshape(1, HQ, D);
    }

    @Benchmark
    public void sdpa(Blackhole bh) {
        dev.released(bh, this::sdpaCall);
    }

    private Tensor sdpaCall() {
        Tensor k = kCache.narrow(0, 0, length).permute(1, 0, 2).unsqueeze(0);
        Tensor v = vCache.narrow(0, 0, length).permute(1, 0, 2).unsqueeze(0);
        return torch.scaled_dot_product_attention(q.unsqueeze(2), k, v, new TensorOptional(), 0.0, false,
                new DoubleOptional(scale), true);
    }
}
