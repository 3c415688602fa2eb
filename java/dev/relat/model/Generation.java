package dev.relat.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Autoregressive decoding: prefill the prompt, then one cached decode step per new token until a
 * stop token (not included in the output) or the token limit. Each step writes its activations
 * and logits into one set of {@link ForwardBuffers} made for the decode and runs inside its own
 * PointerScope (which frees the step's few small tensors: the id, its embedding, the positions),
 * so native memory stays flat however long the answer; only token ids reach the host. Sampling
 * runs on the logits' device with libtorch ops, one seeded generator per call.
 *
 * <p>On a GPU the loop does not wait for the device each token: the sampled id stays on the device
 * and is the next step's input there, and the ids are read back in chunks of
 * {@link #DEVICE_READ_EVERY} to look for a stop token. Up to that many - 1 steps past a stop token
 * are computed and dropped (their positions stay in the cache, which is never read past the
 * answer); the returned tokens are the same as one read per token gives.
 */
public final class Generation {
    /** Why generation ended. */
    public enum Stop {
        /** A stop token was chosen. */
        STOP_TOKEN,
        /** maxNewTokens tokens were generated. */
        MAX_TOKENS
    }

    /**
     * Generated ids and why generation ended.
     *
     * @param tokens the new ids, without the stop token
     * @param reason why it ended
     */
    public record Result(long[] tokens, Stop reason) {}

    /**
     * How much and how to generate.
     *
     * @param maxNewTokens the most new tokens, the stop token not counted
     * @param sampling how each token is chosen
     * @param stopTokens ids that end the answer (e.g. EOS, im_end; see
     *     {@link QwenTokenizer#stopTokens})
     */
    public record Options(int maxNewTokens, SamplingParams sampling, Set<Long> stopTokens) {
        /**
         * Copies stopTokens.
         *
         * @param maxNewTokens 0 or more
         * @param sampling how each token is chosen
         * @param stopTokens ids that end the answer
         * @throws IllegalArgumentException when maxNewTokens is negative
         */
        public Options {
            if (maxNewTokens < 0) throw new IllegalArgumentException("maxNewTokens must be >= 0");
            stopTokens = Set.copyOf(stopTokens);
        }
    }

    /** Tokens decoded on a GPU between two reads of their ids: one host sync per chunk, not per token. */
    public static final int DEVICE_READ_EVERY = 16;

    private Generation() {}

    /**
     * Prefills prompt into cache (appending to what it holds) and decodes, without an adapter.
     *
     * @param model the model
     * @param cache receives the prompt and the returned tokens fed back (at most maxNewTokens -
     *     1); it needs room for that many more positions
     * @param prompt the prompt's token ids, at least one
     * @param options the limit, the sampling and the stop tokens
     * @return the new ids and why generation ended
     * @throws IllegalArgumentException when prompt is empty
     */
    public static Result generate(QwenModel model, KvCache cache, long[] prompt, Options options) {
        return generate(model, cache, prompt, options, null);
    }

    /**
     * Prefills prompt into cache and decodes, with an adapter on the projections.
     *
     * @param model the model
     * @param cache receives the prompt and the returned tokens fed back (at most maxNewTokens -
     *     1); it needs room for that many more positions
     * @param prompt the prompt's token ids, at least one
     * @param options the limit, the sampling and the stop tokens
     * @param adapter adds to the projections it targets; null for the base model
     * @return the new ids and why generation ended
     * @throws IllegalArgumentException when prompt is empty
     */
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
     *
     * @param model the model
     * @param cache the sequence so far; receives the returned tokens fed back (at most
     *     maxNewTokens - 1), so it needs room for that many more positions
     * @param firstLogits [1, vocab] (or [vocab]) of the cache's last position; stays the caller's
     * @param options the limit, the sampling and the stop tokens
     * @param adapter adds to the projections it targets; null for the base model
     * @return the new ids and why generation ended
     */
    public static Result decode(QwenModel model, KvCache cache, Tensor firstLogits, Options options, Adapter adapter) {
        if (firstLogits.is_cuda()) return decodeInChunks(model, cache, firstLogits, options, adapter, DEVICE_READ_EVERY);
        Sampler sampler = new Sampler(options.sampling());
        List<Long> out = new ArrayList<>();
        if (options.maxNewTokens() == 0) return new Result(new long[0], Stop.MAX_TOKENS);
        long next = sampler.next(firstLogits);
        try (ForwardBuffers buffers = model.newBuffers(1)) {
            while (true) {
                if (options.stopTokens().contains(next)) return new Result(toArray(out), Stop.STOP_TOKEN);
                out.add(next);
                if (out.size() >= options.maxNewTokens()) return new Result(toArray(out), Stop.MAX_TOKENS);
                try (PointerScope scope = new PointerScope()) {
                    Tensor logits = model.lastLogits(cache, model.ids(new long[] {next}), adapter, buffers);
                    next = sampler.next(logits);
                }
            }
        }
    }

    /**
     * {@link #decode} with the sampled ids kept on the logits' device and read back every
     * {@code readEvery} tokens: the GPU loop, which the CPU tests run with small chunks to check
     * it returns what {@link #decode}'s token-by-token loop returns.
     */
    static Result decodeInChunks(QwenModel model, KvCache cache, Tensor firstLogits, Options options, Adapter adapter,
            int readEvery) {
        if (readEvery < 1) throw new IllegalArgumentException("readEvery must be >= 1");
        int max = options.maxNewTokens();
        if (max == 0) return new Result(new long[0], Stop.MAX_TOKENS);
        Sampler sampler = new Sampler(options.sampling());
        List<Long> out = new ArrayList<>();
        try (PointerScope scope = new PointerScope(); ForwardBuffers buffers = model.newBuffers(1)) {
            Tensor ids = torch.empty(new long[] {max}, new TensorOptions(firstLogits.device())
                    .dtype(new ScalarTypeOptional(ScalarType.Long)), new MemoryFormatOptional());
            ids.narrow(0, 0, 1).copy_(sampler.pick(firstLogits));
            int sampled = 1;
            int read = 0;
            while (true) {
                if (sampled - read == readEvery || sampled == max) {
                    Tensor chunk = ids.narrow(0, read, sampled - read).cpu();
                    for (int i = 0; i < sampled - read; i++) {
                        long id = chunk.data_ptr_long().get(i);
                        if (options.stopTokens().contains(id)) return new Result(toArray(out), Stop.STOP_TOKEN);
                        out.add(id);
                    }
                    read = sampled;
                    if (sampled == max) return new Result(toArray(out), Stop.MAX_TOKENS);
                }
                try (PointerScope step = new PointerScope()) {
                    Tensor logits = model.lastLogits(cache, ids.narrow(0, sampled - 1, 1), adapter, buffers);
                    ids.narrow(0, sampled, 1).copy_(sampler.pick(logits));
                    sampled++;
                }
            }
        }
    }

    /**
     * The adapter of the sequences still decoding in a batched decode: given the indices (into
     * the batch) of the sequences that remain, in order, the adapter whose i-th member corrects
     * the i-th of them. Called once at the start and whenever a sequence finishes.
     */
    @FunctionalInterface
    public interface BatchAdapter {
        /**
         * @param remaining indices of the sequences still decoding, ascending
         * @return their adapter; null for the base model
         */
        Adapter of(long[] remaining);
    }

    /**
     * Decodes several sequences together, each after what its cache holds: one forward per step
     * over one row per sequence still decoding; a sequence that chose a stop token or reached the
     * limit leaves the batch (its row is dropped, the others go on). Each sequence gets the tokens
     * {@link #decode} gives it alone, up to the rounding of the shared projections: its own
     * sampler (seeded alike), its own cache, its own adapter member. On the CPU the chosen ids are
     * read back every step; on a GPU every {@link #DEVICE_READ_EVERY} steps (the ids stay on the
     * device in between), so a finished sequence may compute up to that many - 1 dropped steps
     * before its row leaves.
     *
     * @param model the model
     * @param caches one per sequence; each receives its tokens fed back (at most maxNewTokens - 1)
     * @param firstLogits [B, vocab]: row b holds the logits of caches[b]'s last position; stays the
     *     caller's
     * @param options the limit, the sampling and the stop tokens, the same for every sequence
     * @param adapters the adapter of the sequences still decoding
     * @return one result per sequence, in order
     */
    public static List<Result> decodeAll(QwenModel model, List<KvCache> caches, Tensor firstLogits, Options options,
            BatchAdapter adapters) {
        return decodeAll(model, caches, firstLogits, options, adapters, firstLogits.is_cuda() ? DEVICE_READ_EVERY : 1);
    }

    /**
     * {@link #decodeAll} reading the chosen ids back every {@code readEvery} steps: the GPU loop,
     * which the CPU tests run with small chunks to check it returns what reading every step returns.
     */
    static List<Result> decodeAll(QwenModel model, List<KvCache> caches, Tensor firstLogits, Options options,
            BatchAdapter adapters, int readEvery) {
        if (readEvery < 1) throw new IllegalArgumentException("readEvery must be >= 1");
        int count = caches.size();
        if (firstLogits.dim() != 2 || firstLogits.size(0) != count) {
            throw new IllegalArgumentException("the first logits must be [" + count + ", vocab], one row per cache");
        }
        int max = options.maxNewTokens();
        List<List<Long>> out = new ArrayList<>();
        Sampler[] samplers = new Sampler[count];
        Result[] results = new Result[count];
        for (int b = 0; b < count; b++) {
            out.add(new ArrayList<>());
            samplers[b] = new Sampler(options.sampling());
            if (max == 0) results[b] = new Result(new long[0], Stop.MAX_TOKENS);
        }
        if (max == 0) return List.of(results);
        long[] remaining = new long[count];
        for (int b = 0; b < count; b++) remaining[b] = b;
        try (PointerScope scope = new PointerScope(); ForwardBuffers buffers = model.newBuffers(count)) {
            Adapter adapter = adapters.of(remaining);
            // the ids chosen since the last read, one column per step: [remaining]; they live in
            // chunkScope, which is closed at each read
            List<Tensor> chunk = new ArrayList<>();
            PointerScope chunkScope = new PointerScope();
            try {
                chunk.add(choose(samplers, remaining, firstLogits));
                while (true) {
                    int steps = chunk.size();
                    boolean read = steps == readEvery;
                    for (long b : remaining) read |= out.get((int) b).size() + steps >= max;
                    Tensor next = chunk.get(steps - 1);
                    if (read) {
                        long[][] ids = readBack(chunk, remaining.length);
                        int kept = 0;
                        long[] stillDecoding = new long[remaining.length];
                        long[] survivorRows = new long[remaining.length];
                        for (int i = 0; i < remaining.length; i++) {
                            int b = (int) remaining[i];
                            List<Long> tokens = out.get(b);
                            for (long id : ids[i]) {
                                if (options.stopTokens().contains(id)) {
                                    results[b] = new Result(toArray(tokens), Stop.STOP_TOKEN);
                                    break;
                                }
                                tokens.add(id);
                                if (tokens.size() >= max) {
                                    results[b] = new Result(toArray(tokens), Stop.MAX_TOKENS);
                                    break;
                                }
                            }
                            if (results[b] == null) {
                                survivorRows[kept] = i;
                                stillDecoding[kept++] = b;
                            }
                        }
                        if (kept == 0) return List.of(results);
                        if (kept < remaining.length) {
                            next = next.index_select(0, indexOn(Arrays.copyOf(survivorRows, kept), next));
                            remaining = Arrays.copyOf(stillDecoding, kept);
                            adapter = adapters.of(remaining);
                        }
                        Scopes.escape(next, scope);
                        chunk.clear();
                        chunkScope.close();
                        chunkScope = new PointerScope();
                    }
                    List<KvCache> active = new ArrayList<>();
                    for (long b : remaining) active.add(caches.get((int) b));
                    int[] ones = new int[remaining.length];
                    Arrays.fill(ones, 1);
                    try (PointerScope step = new PointerScope()) {
                        Tensor h = model.hidden(active, ones, model.embed(next), adapter, buffers);
                        chunk.add(Scopes.escape(choose(samplers, remaining, model.lmHead(h, buffers)), chunkScope));
                    }
                }
            } finally {
                chunkScope.close();
            }
        }
    }

    /** Each remaining sequence's next id from its row of logits, with its own sampler: int64 [rows] on the device. */
    private static Tensor choose(Sampler[] samplers, long[] remaining, Tensor logits) {
        if (samplers[0].greedy()) return torch.argmax(logits, new LongOptional(1), false);
        TensorVector picks = new TensorVector();
        for (int i = 0; i < remaining.length; i++) picks.push_back(samplers[(int) remaining[i]].pick(logits.select(0, i)));
        return torch.cat(picks, 0);
    }

    /** The chunk's ids on the host, one host read: ids[row][step]. */
    private static long[][] readBack(List<Tensor> chunk, int rows) {
        TensorVector columns = new TensorVector();
        for (Tensor c : chunk) columns.push_back(c.reshape(rows, 1));
        Tensor host = torch.cat(columns, 1).cpu().contiguous();
        long[] flat = new long[rows * chunk.size()];
        host.data_ptr_long().get(flat);
        long[][] ids = new long[rows][chunk.size()];
        for (int r = 0; r < rows; r++) System.arraycopy(flat, r * chunk.size(), ids[r], 0, chunk.size());
        return ids;
    }

    private static Tensor indexOn(long[] rows, Tensor like) {
        Tensor index = Tensor.create(rows);
        return like.is_cpu() ? index : index.to(like.device(), ScalarType.Long);
    }

    private static long[] toArray(List<Long> ids) {
        long[] a = new long[ids.size()];
        for (int i = 0; i < a.length; i++) a[i] = ids.get(i);
        return a;
    }
}
