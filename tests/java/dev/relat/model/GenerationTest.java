package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.testing.StopTokens;
import dev.relat.testing.TensorAssert;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Sampling, stop tokens, the end-to-end path from a real-layout checkpoint, and flat memory. */
class GenerationTest {
    static QwenModel model(long seed) {
        QwenConfig config = TinyCheckpoints.qwen3("float32");
        return QwenModel.load(TinyCheckpoints.get("fp32", config, seed, 1), new Device("cpu"), ScalarType.Float);
    }

    static long[] run(QwenModel m, long[] prompt, int n, SamplingParams s, Set<Long> stops) {
        return Generation.generate(m, m.newCache(prompt.length + n), prompt, new Generation.Options(n, s, stops))
                .tokens();
    }

    @Test
    void seededSamplingRepeatsAndTopKOneIsGreedy() {
        long seed = TensorAssert.freshSeed();
        QwenModel m = model(seed);
        long[] prompt = {3, 1, 4, 1, 5};
        SamplingParams s = SamplingParams.sampled(1.0, 0, 1.0, seed);
        long[] a = run(m, prompt, 24, s, Set.of());
        assertArrayEquals(a, run(m, prompt, 24, s, Set.of()), "same seed, same tokens (seed " + seed + ")");
        assertFalse(Arrays.equals(a, run(m, prompt, 24, SamplingParams.sampled(1.0, 0, 1.0, seed + 1), Set.of())),
                "another seed gives another sequence");
        long[] greedy = run(m, prompt, 24, SamplingParams.GREEDY, Set.of());
        assertArrayEquals(greedy, run(m, prompt, 24, SamplingParams.sampled(0.7, 1, 1.0, seed), Set.of()), "top-k 1");
        assertArrayEquals(greedy, run(m, prompt, 24, SamplingParams.sampled(1.0, 0, 1e-6, seed), Set.of()), "tiny top-p");
    }

    /**
     * The GPU loop (ids kept on the device, read back in chunks) returns what the token-by-token
     * loop returns: greedy and sampled, a stop token inside a chunk, at a chunk's end, and the
     * token limit, for chunks of 1, 3 and 16.
     */
    @Test
    void chunkedDecodeReturnsWhatTokenByTokenDecodeReturns() {
        long seed = TensorAssert.freshSeed();
        QwenModel m = model(seed);
        long[] prompt = {3, 1, 4, 1, 5, 9, 2, 6};
        for (SamplingParams s : List.of(SamplingParams.GREEDY, SamplingParams.sampled(1.0, 0, 1.0, seed))) {
            long[] free = decode(m, prompt, 20, s, Set.of(), 0).tokens();
            assertEquals(20, free.length);
            // Stop at the first occurrence of the token at position 2, 3 or the last one; or never.
            for (Set<Long> stops : List.of(Set.of(free[2]), Set.of(free[3]), Set.of(free[19]), Set.<Long>of())) {
                Generation.Result expected = decode(m, prompt, 20, s, stops, 0);
                for (int every : new int[] {1, 3, 16}) {
                    Generation.Result got = decode(m, prompt, 20, s, stops, every);
                    String what = s + ", stops " + stops + ", chunks of " + every + " (seed " + seed + ")";
                    assertArrayEquals(expected.tokens(), got.tokens(), what);
                    assertEquals(expected.reason(), got.reason(), what);
                }
            }
        }
    }

    /**
     * The batched decode ({@link Generation#decodeAll}) gives each of four prompts what decoding it
     * alone gives, greedy and sampled, with one sequence stopping after its first token, another
     * at the token limit, read back every step (the CPU loop) or in chunks of 3 and 16 (the GPU loop).
     */
    @Test
    void batchedDecodeGivesEachSequenceWhatItGetsAlone() {
        long seed = TensorAssert.freshSeed();
        QwenModel m = model(seed);
        List<long[]> prompts = List.of(new long[] {3, 1, 4}, new long[] {1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7},
                new long[] {2}, new long[] {7, 1, 8, 2, 8});
        for (SamplingParams s : List.of(SamplingParams.GREEDY, SamplingParams.sampled(1.0, 0, 1.0, seed))) {
            List<long[]> free = new ArrayList<>();
            for (long[] p : prompts) free.add(decode(m, p, 12, s, Set.of(), 0).tokens());
            OptionalLong stop = StopTokens.endingEarly(free, 1, 4); // the second prompt stops early
            Assumptions.assumeTrue(stop.isPresent(), "every token of the second answer's first 4 comes as early in "
                    + "the others' (seed " + seed + ")");
            Set<Long> stops = Set.of(stop.getAsLong());
            List<Generation.Result> alone = new ArrayList<>();
            for (long[] p : prompts) alone.add(decode(m, p, 12, s, stops, 0));
            assertEquals(StopTokens.firstIndex(free.get(1), stop.getAsLong()), alone.get(1).tokens().length,
                    "seed " + seed);
            int early = alone.get(1).tokens().length;
            assertTrue(early < 4 && alone.stream().anyMatch(r -> r.tokens().length >= early + 3), "seed " + seed);
            for (int every : new int[] {1, 3, 16}) {
                try (PointerScope scope = new PointerScope()) {
                    List<KvCache> caches = new ArrayList<>();
                    TensorVector logits = new TensorVector();
                    for (long[] p : prompts) {
                        KvCache cache = m.newCache(p.length + 12 + every);
                        caches.add(cache);
                        logits.push_back(m.lastLogits(cache, p));
                    }
                    List<Generation.Result> batch = Generation.decodeAll(m, caches, torch.cat(logits, 0),
                            new Generation.Options(12, s, stops), remaining -> null, every);
                    for (int b = 0; b < prompts.size(); b++) {
                        String what = s + ", sequence " + b + ", reads every " + every + " (seed " + seed + ")";
                        assertArrayEquals(alone.get(b).tokens(), batch.get(b).tokens(), what);
                        assertEquals(alone.get(b).reason(), batch.get(b).reason(), what);
                    }
                }
            }
        }
    }

    /** Prefill, then {@link Generation#decode} (readEvery 0) or its chunked GPU loop. */
    static Generation.Result decode(QwenModel m, long[] prompt, int n, SamplingParams s, Set<Long> stops,
            int readEvery) {
        try (PointerScope scope = new PointerScope()) {
            KvCache cache = m.newCache(prompt.length + n);
            Tensor logits = m.lastLogits(cache, prompt);
            Generation.Options options = new Generation.Options(n, s, stops);
            return readEvery == 0 ? Generation.decode(m, cache, logits, options, null)
                    : Generation.decodeInChunks(m, cache, logits, options, null, readEvery);
        }
    }

    /** Empirical frequencies of 6000 draws against the exact restricted softmax, within 0.03 (> 4 sigma). */
    @Test
    void samplingFollowsTheRestrictedSoftmax() {
        Tensor logits = Tensor.create(2f, 1f, 0f, -1f);
        double[] p = softmax(new double[] {2, 1, 0, -1}, 4);
        check(logits, SamplingParams.sampled(1.0, 0, 1.0, 1), p);
        check(logits, SamplingParams.sampled(1.0, 3, 1.0, 2), softmax(new double[] {2, 1, 0, -1}, 3));
        // top-p 0.7: the first token holds 0.64 < 0.7, so the first two are kept
        check(logits, SamplingParams.sampled(1.0, 0, 0.7, 3), softmax(new double[] {2, 1, 0, -1}, 2));
        double[] hot = softmax(new double[] {1, 0.5, 0, -0.5}, 4); // temperature 2
        check(logits, SamplingParams.sampled(2.0, 0, 1.0, 4), hot);
    }

    static double[] softmax(double[] x, int keep) {
        double[] p = new double[x.length];
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += Math.exp(x[i]);
        for (int i = 0; i < keep; i++) p[i] = Math.exp(x[i]) / sum;
        return p;
    }

    static void check(Tensor logits, SamplingParams s, double[] expected) {
        Sampler sampler = new Sampler(s);
        int n = 6000;
        int[] counts = new int[expected.length];
        for (int i = 0; i < n; i++) {
            try (PointerScope scope = new PointerScope()) {
                counts[(int) sampler.next(logits)]++;
            }
        }
        for (int i = 0; i < expected.length; i++) {
            double f = counts[i] / (double) n;
            assertEquals(expected[i], f, 0.03, s + ": token " + i + " frequency " + f + " vs " + expected[i]);
            if (expected[i] == 0) assertEquals(0, counts[i], s + ": token " + i + " is excluded");
        }
    }

    @Test
    void stopTokensEndTheAnswer() {
        QwenModel m = model(TensorAssert.freshSeed());
        long[] prompt = {7, 8, 9};
        long[] greedy = run(m, prompt, 12, SamplingParams.GREEDY, Set.of());
        int firstRepeat = 4;
        long stop = greedy[firstRepeat];
        int at = 0;
        while (greedy[at] != stop) at++;
        Generation.Result r = Generation.generate(m, m.newCache(32), prompt,
                new Generation.Options(12, SamplingParams.GREEDY, Set.of(stop)));
        assertEquals(Generation.Stop.STOP_TOKEN, r.reason());
        assertArrayEquals(Arrays.copyOf(greedy, at), r.tokens());
        assertEquals(0, run(m, prompt, 0, SamplingParams.GREEDY, Set.of()).length);
    }

    @Test
    void realLayoutCheckpointRunsEndToEnd() {
        QwenConfig config = CheckpointWriter.config("qwen3", 32, 48, 2, 4, 2, 8, CheckpointWriter.QWEN_VOCAB, true,
                "bfloat16");
        Path dir = TinyCheckpoints.get("e2e", config, 1, 2);
        try (QwenTokenizer tokenizer = QwenTokenizer.load(dir)) {
            QwenModel m = QwenModel.load(dir, new Device("cpu"), ScalarType.BFloat16);
            long[] prompt = tokenizer.encodeChat(List.of(ChatMessage.system("You are Qwen."),
                    ChatMessage.user("What is 2+3?")), true, false);
            assertEquals(tokenizer.tokenId("<|im_start|>"), prompt[0]);
            Generation.Result r = Generation.generate(m, m.newCache(prompt.length + 16), prompt,
                    new Generation.Options(16, SamplingParams.sampled(0.8, 50, 0.95, 7), tokenizer.stopTokens(config)));
            assertTrue(r.tokens().length <= 16);
            for (long id : r.tokens()) assertTrue(id >= 0 && id < config.vocabSize());
            assertTrue(tokenizer.decode(r.tokens()) != null);
        }
    }

    /**
     * 200 decode steps, sampled with top-k over the full Qwen vocabulary: with the per-step
     * PointerScope the count of live native handles and the resident memory stay flat; the same
     * steps without a scope leave their handles behind (so the check can fail).
     */
    @Test
    void memoryStaysFlatOverManyDecodeSteps() {
        QwenConfig config = CheckpointWriter.config("qwen3", 32, 48, 2, 4, 2, 8, CheckpointWriter.QWEN_VOCAB, true,
                "float32");
        QwenModel m = QwenModel.load(TinyCheckpoints.get("memory", config, 2, 1), new Device("cpu"), ScalarType.Float);
        SamplingParams sampling = SamplingParams.sampled(1.0, 40, 1.0, 1);
        Generation.Options warm = new Generation.Options(30, sampling, Set.of());
        Generation.generate(m, m.newCache(64), new long[] {1, 2, 3}, warm);
        System.gc();
        long countBefore = Pointer.totalCount();
        long rssBefore = Pointer.physicalBytes();
        Generation.Result r = Generation.generate(m, m.newCache(210), new long[] {1, 2, 3},
                new Generation.Options(200, sampling, Set.of()));
        assertEquals(200, r.tokens().length);
        long countAfter = Pointer.totalCount();
        long rssAfter = Pointer.physicalBytes();
        System.out.printf("200 decode steps: live native handles %d -> %d, RSS %.1f -> %.1f MiB%n", countBefore,
                countAfter, rssBefore / 1048576.0, rssAfter / 1048576.0);
        // the cache (2 layers x k, v) and the sampler's generator are the only new long-lived handles
        assertTrue(countAfter - countBefore <= 16, "live handles grew by " + (countAfter - countBefore));
        assertTrue(rssAfter - rssBefore < 48L << 20, "RSS grew by " + ((rssAfter - rssBefore) >> 20) + " MiB");

        // the same decode step without a scope leaves its handles behind
        KvCache cache = m.newCache(32);
        long leakBefore = Pointer.totalCount();
        for (int i = 0; i < 20; i++) m.lastLogits(cache, new long[] {i});
        assertTrue(Pointer.totalCount() - leakBefore > 20 * 20, "unscoped steps should leave handles");
    }
}
