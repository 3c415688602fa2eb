package dev.relat.model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Picks the next token from a logits row on the logits' device with libtorch ops: greedy argmax,
 * or temperature, top-k, top-p and a seeded multinomial draw. At most the chosen id is read back
 * to the host. relat's sampling kernel ({@code dev.relat.ops.Sampling}) is not used here.
 */
final class Sampler {
    private final SamplingParams sampling;
    private Generator generator;

    public Sampler(SamplingParams sampling) {
        this.sampling = sampling;
    }

    /** Whether the choice is the argmax (no generator, the same for every row). */
    boolean greedy() {
        return sampling.greedy();
    }

    /** The id chosen from logits [V] or [1, V] (any floating dtype), read back to the host. */
    public long next(Tensor logits) {
        return pick(logits).item_long();
    }

    /**
     * The id chosen from logits [V] or [1, V], as a new int64 tensor [1] on the logits' device:
     * nothing is read back, so a GPU decode loop can feed it to the next step without waiting.
     */
    public Tensor pick(Tensor logits) {
        Tensor row = logits.reshape(-1);
        if (sampling.greedy()) return torch.argmax(row).reshape(1);
        Tensor scores = row.to(ScalarType.Float).div(new Scalar(sampling.temperature()));
        long vocab = scores.size(0);
        if (sampling.topK() > 0 && sampling.topK() < vocab) {
            T_TensorTensor_T top = torch.topk(scores, sampling.topK(), -1, true, true);
            Tensor kth = top.get0().narrow(0, sampling.topK() - 1, 1);
            scores = scores.masked_fill(scores.lt(kth), new Scalar(Double.NEGATIVE_INFINITY));
        }
        if (sampling.topP() < 1.0) {
            T_TensorTensor_T sorted = torch.sort(scores, 0, true);
            Tensor probs = sorted.get0().softmax(0);
            Tensor before = probs.cumsum(0).sub(probs); // probability mass ranked above each token
            Tensor remove = before.ge(new Scalar(sampling.topP()));
            Tensor removeOriginal = torch.zeros_like(remove).scatter(0, sorted.get1(), remove);
            scores = scores.masked_fill(removeOriginal, new Scalar(Double.NEGATIVE_INFINITY));
        }
        Tensor probs = scores.softmax(0);
        return torch.multinomial(probs, 1, false, new GeneratorOptional(generator(row)));
    }

    private Generator generator(Tensor on) {
        if (generator == null) {
            try (PointerScope scope = new PointerScope()) {
                Generator g = on.is_cuda() ? torch_cuda.make_generator_cuda((byte) on.device().index())
                        : torch.make_generator_cpu();
                g.set_current_seed(sampling.seed());
                g.retainReference();
                generator = g;
            }
        }
        return generator;
    }
}
