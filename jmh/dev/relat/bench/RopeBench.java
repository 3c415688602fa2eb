package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.Rope;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.Scalar;
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
 * RoPE on q and k on {@code device} ({@link BenchDevice}) at Qwen3 shapes (head_dim 128, 8 KV heads; 16 query heads for
 * Qwen3-0.6B, 32 for Qwen3-8B). relat: one fused call for q and k, cos/sin computed inside from the
 * positions. libtorch: Hugging Face's apply_rotary_pos_emb (q*cos + rotate_half(q)*sin, then k)
 * with cos/sin precomputed in the activation dtype, i.e. the per-layer cost in transformers, which
 * builds the cos/sin tables once per forward; libtorchWithTables adds that table construction.
 * Backward: relat's inverse rotation vs the ops autograd runs for the HF formula. Baselines: released
 * each call (chains of temporaries, as in Python). relat writes into preallocated outputs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class RopeBench {
    @Param({"0.6B", "8B"})
    public String model;

    @Param({"1", "512"})
    public long tokens;

    @Param({"F32", "BF16"})
    public DType dtype;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private static final long HEAD_DIM = 128;
    private Tensor q, k, qOut, kOut, positions, invFreq, cos, sin;

    @Setup
    public void setup() {
        long qHeads = model.equals("8B") ? 32 : 16, kvHeads = 8;
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        q = torch.randn(new long[] {tokens, qHeads, HEAD_DIM}, f32).to(dtype.scalarType());
        k = torch.randn(new long[] {tokens, kvHeads, HEAD_DIM}, f32).to(dtype.scalarType());
        qOut = torch.empty_like(q);
        kOut = torch.empty_like(k);
        positions = torch.arange(new Scalar(tokens), dev.options(torch.ScalarType.Long)).add(new Scalar(37));
        invFreq = Rope.invFreq(1e6, HEAD_DIM, dev.device());
        Tensor[] cs = tables();
        cos = cs[0];
        sin = cs[1];
    }

    private Tensor[] tables() {
        Tensor freqs = invFreq.unsqueeze(1).matmul(positions.to(torch.ScalarType.Float).unsqueeze(0)).transpose(0, 1);
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), 1);
        return new Tensor[] {emb.cos().to(dtype.scalarType()).unsqueeze(1), emb.sin().to(dtype.scalarType()).unsqueeze(1)};
    }

    private static Tensor rotateHalf(Tensor x) {
        long half = x.size(-1) / 2;
        return torch.cat(new TensorVector(x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)), -1);
    }

    /** The transpose of rotate_half, which autograd applies in the backward. */
    private static Tensor rotateHalfBackward(Tensor y) {
        long half = y.size(-1) / 2;
        return torch.cat(new TensorVector(y.narrow(-1, half, half), y.narrow(-1, 0, half).neg()), -1);
    }

    @Benchmark
    public Tensor relatForward() {
        dev.run(() -> Rope.forward(q, k, positions, invFreq, qOut, kOut));
        return qOut;
    }

    @Benchmark
    public void libtorchForward(Blackhole bh) {
        dev.released(bh, () -> {
            bh.consume(q.mul(cos).add(rotateHalf(q).mul(sin)));
            return k.mul(cos).add(rotateHalf(k).mul(sin));
        });
    }

    @Benchmark
    public void libtorchWithTables(Blackhole bh) {
        dev.released(bh, () -> {
            Tensor[] cs = tables();
            bh.consume(q.mul(cs[0]).add(rotateHalf(q).mul(cs[1])));
            return k.mul(cs[0]).add(rotateHalf(k).mul(cs[1]));
        });
    }

    @Benchmark
    public Tensor relatBackward() {
        dev.run(() -> Rope.backward(q, k, positions, invFreq, qOut, kOut));
        return qOut;
    }

    @Benchmark
    public void libtorchBackward(Blackhole bh) {
        dev.released(bh, () -> {
            bh.consume(q.mul(cos).add(rotateHalfBackward(q.mul(sin))));
            return k.mul(cos).add(rotateHalfBackward(k.mul(sin)));
        });
    }
}
