package dev.relat.bench;

import dev.relat.ops.DType;
import dev.relat.ops.Sampling;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
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
 * Sampling one token per row from Qwen3 logits (vocab 151,936, fp32) on {@code device}
 * ({@link BenchDevice}). relat: one call, ids written into a preallocated int64 tensor, workspace
 * preallocated. libtorch, as a user would write it (Hugging Face's order: temperature, top-k,
 * top-p): greedy = argmax; temperature = softmax + multinomial; top-k = topk, softmax over the k,
 * multinomial, gather; top-p = full sort, softmax, cumsum, mask, multinomial, gather; top-k + top-p
 * = the top-p steps on the top-k values. Settings are Qwen3's recommended ones (T 0.6 with top-k 20
 * / top-p 0.95; T 0.7 alone). Baseline: released each call.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class SamplingBench {
    @Param({"1", "512"})
    public long rows;

    @Param({"greedy", "temperature", "topk", "topp", "topk_topp"})
    public String mode;

    @Param({"F32"})
    public DType dtype;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private static final long VOCAB = 151_936;
    private BenchDevice dev;
    private Tensor logits, out, workspace;
    private Sampling.Params params;
    private long step;

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        logits = torch.randn(new long[] {rows, VOCAB}, dev.options(torch.ScalarType.Float))
                .mul(new Scalar(3)).to(dtype.scalarType());
        out = torch.zeros(new long[] {rows}, dev.options(torch.ScalarType.Long));
        workspace = Sampling.workspace(rows, VOCAB, dev.device());
        params = switch (mode) {
            case "greedy" -> Sampling.Params.greedy();
            case "temperature" -> new Sampling.Params(0.7, 0, 1.0);
            case "topk" -> new Sampling.Params(0.6, 20, 1.0);
            case "topp" -> new Sampling.Params(0.6, 0, 0.95);
            case "topk_topp" -> new Sampling.Params(0.6, 20, 0.95);
            default -> throw new IllegalArgumentException(mode);
        };
        torch.manual_seed(1);
    }

    @Benchmark
    public Tensor relat() {
        long s = step++;
        dev.run(() -> Sampling.sample(logits, params, 1234, s, out, workspace));
        return out;
    }

    @Benchmark
    public void libtorch(Blackhole bh) {
        dev.released(bh, this::userSampling);
    }

    private Tensor userSampling() {
        if (params.isGreedy()) return torch.argmax(logits, new LongOptional(-1), false);
        Tensor scores = logits.div(new Scalar(params.temperature()));
        Tensor ids = null;
        if (params.topK() > 0) {
            T_TensorTensor_T top = torch.topk(scores, params.topK());
            scores = top.get0();  // sorted, largest first
            ids = top.get1();
        } else if (params.topP() < 1) {
            T_TensorTensor_T sorted = torch.sort(scores, -1, true);
            scores = sorted.get0();
            ids = sorted.get1();
        }
        Tensor probs = scores.softmax(-1);
        if (params.topP() < 1) {
            // Keep the shortest prefix whose mass reaches top_p: drop tokens whose preceding mass does.
            Tensor before = torch.cumsum(probs, -1).sub(probs);
            probs = probs.masked_fill(before.gt(new Scalar(params.topP())), new Scalar(0.0));
        }
        Tensor pick = torch.multinomial(probs, 1);
        return ids == null ? pick : ids.gather(-1, pick);
    }
}
