package dev.relat.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Autoregressive decoding: prefill the prompt, then one cached decode step per new token until a
 * stop token (not included in the output) or the token limit. Each step runs inside its own
 * PointerScope, so native memory stays flat however long the answer; only token ids reach the
 * host.
 */
public final class Generation {
    /** Why generation ended. */
    public enum Stop { STOP_TOKEN, MAX_TOKENS }

    /** Generated ids (without the stop token) and why it ended. */
    public record Result(long[] tokens, Stop reason) {}

    /** maxNewTokens new tokens at most; stop tokens end the answer (e.g. EOS, im_end). */
    public record Options(int maxNewTokens, SamplingParams sampling, Set<Long> stopTokens) {
        public Options {
            if (maxNewTokens < 0) throw new IllegalArgumentException("maxNewTokens must be >= 0");
            stopTokens = Set.copyOf(stopTokens);
        }
    }

    private Generation() {}

    /** Prefills prompt into cache (appending to what it holds) and decodes. */
    public static Result generate(QwenModel model, KvCache cache, long[] prompt, Options options) {
        return generate(model, cache, prompt, options, null);
    }

    /** Prefills prompt into cache and decodes, with an adapter on the projections (null: none). */
    public static Result generate(QwenModel model, KvCache cache, long[] prompt, Options options, Adapter adapter) {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (options.maxNewTokens() == 0) return new Result(new long[0], Stop.MAX_TOKENS);
        try (PointerScope scope = new PointerScope()) {
            return decode(model, cache, model.lastLogits(cache, prompt, adapter), options, adapter);
        }
    }

    /**
     * Decodes after what the cache holds, starting from the logits [1, vocab] of its last position
     * (e.g. after a latent thought fed as embeddings).
     */
    public static Result decode(QwenModel model, KvCache cache, Tensor firstLogits, Options options, Adapter adapter) {
        Sampler sampler = new Sampler(options.sampling());
        List<Long> out = new ArrayList<>();
        if (options.maxNewTokens() == 0) return new Result(new long[0], Stop.MAX_TOKENS);
        long next = sampler.next(firstLogits);
        while (true) {
            if (options.stopTokens().contains(next)) return new Result(toArray(out), Stop.STOP_TOKEN);
            out.add(next);
            if (out.size() >= options.maxNewTokens()) return new Result(toArray(out), Stop.MAX_TOKENS);
            try (PointerScope scope = new PointerScope()) {
                Tensor logits = model.lastLogits(cache, new long[] {next}, adapter);
                next = sampler.next(logits);
            }
        }
    }

    private static long[] toArray(List<Long> ids) {
        long[] a = new long[ids.size()];
        for (int i = 0; i < a.length; i++) a[i] = ids.get(i);
        return a;
    }
}
