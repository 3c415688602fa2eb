package dev.relat.ops;

import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import dev.relat.testing.Seeds;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Sampling: greedy against torch.argmax; reproducibility; and the distribution of 10^5 draws
 * against softmax(logits / T) restricted by top-k / top-p, with a chi-square goodness-of-fit test
 * at significance 1e-4 (per setting). The same statistic must reject a deliberately wrong
 * distribution (10% off in temperature, or the truncation ignored), so the test can fail.
 */
class SamplingTest {
    private static final Device CPU = new Device("cpu");
    private static final int DRAWS = 100_000;
    /** Upper 1e-4 quantile of the standard normal, for the Wilson-Hilferty chi-square quantile. */
    private static final double Z_1E4 = 3.719016;

    static Tensor longs(long... shape) {
        return torch.full(shape, new Scalar(-1), new TensorOptions(torch.ScalarType.Long));
    }

    static float[] values(Tensor logits) {
        Tensor f = logits.to(torch.ScalarType.Float).contiguous();
        float[] v = new float[(int) f.numel()];
        f.data_ptr_float().get(v);
        return v;
    }

    // ---- the reference distribution, in double ----

    /** Token order: logit descending, ties by index ascending. */
    static Integer[] order(float[] x) {
        Integer[] idx = IntStream.range(0, x.length).boxed().toArray(Integer[]::new);
        Arrays.sort(idx, Comparator.<Integer>comparingDouble(i -> -x[i]).thenComparingInt(i -> i));
        return idx;
    }

    /** softmax(x / T) over the top-k, then the top-p nucleus of that, renormalised. */
    static double[] expected(float[] x, double temperature, long topK, double topP) {
        int n = x.length;
        Integer[] order = order(x);
        int keep = topK > 0 && topK < n ? (int) topK : n;
        double max = x[order[0]] / temperature;
        double[] w = new double[n];
        double z = 0;
        for (int i = 0; i < keep; i++) {
            w[order[i]] = Math.exp(x[order[i]] / temperature - max);
            z += w[order[i]];
        }
        if (topP < 1) {
            double cum = 0;
            int kept = keep;
            for (int i = 0; i < keep; i++) {
                cum += w[order[i]] / z;
                if (cum >= topP) {
                    kept = i + 1;
                    break;
                }
            }
            for (int i = kept; i < keep; i++) w[order[i]] = 0;
        }
        double total = Arrays.stream(w).sum();
        for (int i = 0; i < n; i++) w[i] /= total;
        return w;
    }

    /**
     * The sampling semantics of relat.h written out directly in Java (sort everything, walk), with
     * the same integer masses and Philox numbers: the kernels must return exactly its ids.
     */
    static final class Oracle {
        static long orderKey(float v) {
            int bits = Float.floatToRawIntBits(v);
            if (Float.isNaN(v)) return 0;
            if (bits == 0x80000000) bits = 0;
            return Integer.toUnsignedLong(bits < 0 ? ~bits : bits | 0x80000000);
        }

        static long composite(float v, int index) {
            return (orderKey(v) << 23) | (0x7fffffL - index);
        }

        static long mass(float d) {
            int db = Float.floatToRawIntBits(d);
            boolean live = db < 0 ? Integer.compareUnsigned(db, 0xC1DD999A) <= 0 : db <= 0x7f800000;
            float dc = live ? d : 0f;
            float k = (float) Math.rint(dc * 1.44269504088896341f);
            float r = Math.fma(k, -0.693359375f, dc);
            r = Math.fma(k, 2.12194440e-4f, r);
            float p = Math.fma(1.9875691500e-4f, r, 1.3981999507e-3f);
            p = Math.fma(p, r, 8.3334519073e-3f);
            p = Math.fma(p, r, 4.1665795894e-2f);
            p = Math.fma(p, r, 1.6666665459e-1f);
            p = Math.fma(p, r, 5.0000001201e-1f);
            float y = Math.fma(p, r * r, r) + 1.0f;
            float scaled = y * Float.intBitsToFloat(((int) k + 40 + 127) << 23);
            int b = Float.floatToRawIntBits(scaled);
            int e = (b >>> 23) - 127;
            long m = (b & 0x7fffff) | 0x800000;
            int left = e > 23 ? e - 23 : 0;
            int right = e < 23 ? (e > -1 ? 23 - e : 24) : 0;
            return live ? (m << left) >>> right : 0;
        }

        static long philox(long seed, long step, long row) {
            int c0 = (int) step, c1 = (int) (step >>> 32), c2 = (int) row, c3 = (int) (row >>> 32);
            int k0 = (int) seed, k1 = (int) (seed >>> 32);
            for (int round = 0; round < 10; round++) {
                long p0 = 0xD2511F53L * Integer.toUnsignedLong(c0);
                long p1 = 0xCD9E8D57L * Integer.toUnsignedLong(c2);
                int n0 = (int) (p1 >>> 32) ^ c1 ^ k0, n1 = (int) p1;
                int n2 = (int) (p0 >>> 32) ^ c3 ^ k1, n3 = (int) p0;
                c0 = n0;
                c1 = n1;
                c2 = n2;
                c3 = n3;
                k0 += 0x9E3779B9;
                k1 += 0xBB67AE85;
            }
            return (Integer.toUnsignedLong(c1) << 32) | Integer.toUnsignedLong(c0);
        }

        static long unsignedMultiplyHigh(long a, long b) {
            return Math.multiplyHigh(a, b) + ((a >> 63) & b) + ((b >> 63) & a);
        }

        private final float[] x;
        private final int[] order;

        /** One row of logits: sorts its tokens once (largest composite key first). */
        Oracle(float[] x) {
            this.x = x;
            long[] keys = new long[x.length];
            for (int i = 0; i < x.length; i++) keys[i] = composite(x[i], i);
            // Composite keys fit in 55 bits: signed order is unsigned order.
            Arrays.sort(keys);
            order = new int[x.length];
            for (int i = 0; i < x.length; i++) order[i] = (int) (0x7fffffL - (keys[x.length - 1 - i] & 0x7fffffL));
        }

        long sample(Sampling.Params params, long seed, long step, long row) {
            double temperature = params.temperature(), topP = params.topP();
            long topK = params.topK();
            int n = x.length;
            int top = order[0];
            float tau = (float) temperature;
            if (!(tau > 0)) return top;
            float m = x[top] / tau;
            int keep = topK > 0 && topK < n ? (int) topK : n;
            long[] q = new long[keep];
            long total = 0;
            for (int i = 0; i < keep; i++) {
                q[i] = mass(x[order[i]] / tau - m);
                total += q[i];
            }
            if (total == 0) return top;
            int kept = keep;
            long keptMass = total;
            if ((float) topP < 1f) {
                double t = Math.ceil((double) (float) topP * (double) total);
                long target = !(t >= 1.0) ? 1 : t >= (double) total ? total : (long) t;
                long cum = 0;
                for (int i = 0; i < keep; i++) {
                    cum += q[i];
                    if (cum >= target) {
                        kept = i + 1;
                        keptMass = cum;
                        break;
                    }
                }
            }
            long t = unsignedMultiplyHigh(philox(seed, step, row), keptMass);
            long cum = 0;
            for (int i = 0; i < kept; i++) {
                cum += q[i];
                if (cum > t) return order[i];
            }
            throw new AssertionError("no token reached the draw");
        }
    }

    /** Result of a chi-square goodness-of-fit test (categories with expected count < 5 merged). */
    record ChiSquare(double statistic, int df, double critical, boolean impossibleDraw) {
        boolean rejects() {
            return impossibleDraw || statistic > critical;
        }
    }

    static ChiSquare chiSquare(long[] counts, double[] p, long draws) {
        double stat = 0, poolObserved = 0, poolExpected = 0;
        int categories = 0;
        boolean impossible = false;
        for (int i = 0; i < p.length; i++) {
            double e = p[i] * draws;
            if (p[i] == 0) {
                impossible |= counts[i] != 0;
                continue;
            }
            if (e < 5) {
                poolObserved += counts[i];
                poolExpected += e;
                continue;
            }
            stat += (counts[i] - e) * (counts[i] - e) / e;
            categories++;
        }
        if (poolExpected > 0) {
            stat += (poolObserved - poolExpected) * (poolObserved - poolExpected) / poolExpected;
            categories++;
        }
        int df = Math.max(1, categories - 1);
        double a = 2.0 / (9 * df);
        double critical = df * Math.pow(1 - a + Z_1E4 * Math.sqrt(a), 3);
        return new ChiSquare(stat, df, critical, impossible);
    }

    static double totalVariation(long[] counts, double[] p, long draws) {
        double tv = 0;
        for (int i = 0; i < p.length; i++) tv += Math.abs(counts[i] / (double) draws - p[i]);
        return tv / 2;
    }

    /** DRAWS draws: 100 calls over 1000 identical rows, steps 0..99, so every (step, row) is distinct. */
    static long[] draw(Tensor row, Sampling.Params params, long seed) {
        return draw(row, params, seed, 1000, DRAWS / 1000);
    }

    static long[] draw(Tensor row, Sampling.Params params, long seed, int rows, int steps) {
        Tensor logits = row.unsqueeze(0).expand(new long[] {rows, row.size(0)}).contiguous();
        Tensor out = longs(rows);
        Tensor ws = Sampling.workspace(rows, row.size(0), CPU);
        long[] counts = new long[(int) row.size(0)];
        long[] ids = new long[rows];
        for (int step = 0; step < steps; step++) {
            out.fill_(new Scalar(-1));
            Sampling.sample(logits, params, seed, step, out, ws);
            out.data_ptr_long().get(ids);
            for (long id : ids) counts[(int) id]++;
        }
        return counts;
    }

    static Stream<Arguments> settings() {
        return Stream.of(
                Arguments.of(DType.F32, new Sampling.Params(1.0, 0, 1.0)),
                Arguments.of(DType.F32, new Sampling.Params(0.7, 0, 1.0)),
                Arguments.of(DType.F32, new Sampling.Params(1.5, 10, 1.0)),
                Arguments.of(DType.F32, new Sampling.Params(1.0, 0, 0.8)),
                Arguments.of(DType.F32, new Sampling.Params(0.8, 20, 0.9)),
                Arguments.of(DType.F32, new Sampling.Params(2.0, 0, 0.3)),
                Arguments.of(DType.BF16, new Sampling.Params(0.6, 20, 0.95)),
                Arguments.of(DType.F16, new Sampling.Params(1.2, 7, 1.0)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("settings")
    void distributionMatchesSoftmaxRestrictedByTopKAndTopP(DType dtype, Sampling.Params params) {
        long seed = freshSeed();
        Tensor logits = randn(seed, DType.F32, 50).mul(new Scalar(2)).to(dtype.scalarType());
        float[] x = values(logits);
        long[] counts = draw(logits, params, seed);
        double[] p = expected(x, params.temperature(), params.topK(), params.topP());
        ChiSquare test = chiSquare(counts, p, DRAWS);
        String what = dtype + " " + params + " seed " + seed + ": chi2 " + test.statistic() + " (df " + test.df()
                + ", critical " + test.critical() + "), TV " + totalVariation(counts, p, DRAWS);
        assertFalse(test.impossibleDraw(), what + ": a token outside top-k / top-p was drawn");
        Seeds.record(dtype + " " + params + ": chi2 over its critical value", test.statistic() / test.critical(), 1, seed);
        assertFalse(test.rejects(), what);

        // The statistic has power: a slightly wrong distribution must be rejected by it.
        double[] wrong = params.topK() > 0 || params.topP() < 1
                ? expected(x, params.temperature(), 0, 1.0)
                : expected(x, params.temperature() * 1.1, 0, 1.0);
        ChiSquare wrongTest = chiSquare(counts, wrong, DRAWS);
        Seeds.record(dtype + " " + params + ": a wrong distribution, critical value over chi2",
                wrongTest.critical() / wrongTest.statistic(), 1, seed);
        assertTrue(wrongTest.rejects(), what + ": a wrong distribution was not rejected");
    }

    @Test
    void largeVocabularyWithFewLiveTokens() {
        // 151,936 tokens, 60 of them within reach at scattered indices, the rest 40 below the max:
        // exercises the candidate buffer (top-k), the mass histograms (top-p) on a full vocabulary.
        // 10^4 draws per setting, same chi-square test.
        long seed = freshSeed();
        int vocab = 151_936;
        Random random = new Random(seed);
        float[] x = new float[vocab];
        Arrays.fill(x, -30f);
        for (int i = 0; i < 60; i++) x[random.nextInt(vocab)] = 10f + (float) random.nextGaussian();
        Tensor logits = torch.empty(new long[] {vocab}, new TensorOptions(torch.ScalarType.Float),
                new MemoryFormatOptional());
        logits.data_ptr_float().put(x);
        int draws = 10_000;  // each draw reads the whole vocabulary
        for (Sampling.Params params : new Sampling.Params[] {
            new Sampling.Params(1.0, 0, 1.0), new Sampling.Params(0.7, 20, 1.0),
            new Sampling.Params(1.0, 0, 0.9), new Sampling.Params(0.6, 20, 0.95)}) {
            long[] counts = draw(logits, params, seed, 100, draws / 100);
            double[] p = expected(x, params.temperature(), params.topK(), params.topP());
            ChiSquare test = chiSquare(counts, p, draws);
            String what = params + " seed " + seed + ": chi2 " + test.statistic() + " (df " + test.df()
                    + ", critical " + test.critical() + ")";
            Seeds.record("vocab 151,936, " + params + ": chi2 over its critical value",
                    test.statistic() / test.critical(), 1, seed);
            assertFalse(test.rejects(), what);
        }
    }

    @Test
    void idsEqualTheReferenceSemanticsExactly() {
        long seed = freshSeed();
        Sampling.Params[] settings = {
            Sampling.Params.greedy(), new Sampling.Params(1.0, 0, 1.0), new Sampling.Params(0.7, 20, 1.0),
            new Sampling.Params(1.0, 0, 0.9), new Sampling.Params(0.6, 20, 0.95), new Sampling.Params(1.3, 3000, 0.5),
            new Sampling.Params(0.9, 1, 1.0), new Sampling.Params(3.0, 0, 0.999)};
        int rows = 3;
        for (DType dtype : DType.values()) {
            for (long vocab : new long[] {1, 2, 7, 50, 1000, 4099, 40_000}) {
                for (boolean ties : new boolean[] {false, true}) {
                    // With ties: small integers, so equal logits straddle every boundary.
                    Tensor f = randn(seed + vocab, DType.F32, rows, vocab).mul(new Scalar(ties ? 1.5 : 3));
                    if (ties) f = torch.round(f);
                    Tensor logits = f.to(dtype.scalarType());
                    float[] all = values(logits);
                    Tensor ws = Sampling.workspace(rows, vocab, CPU);
                    Oracle[] oracles = new Oracle[rows];
                    for (int r = 0; r < rows; r++) {
                        oracles[r] = new Oracle(Arrays.copyOfRange(all, (int) (r * vocab), (int) ((r + 1) * vocab)));
                    }
                    for (Sampling.Params params : settings) {
                        for (long step = 0; step < 3; step++) {
                            Tensor out = longs(rows);
                            Sampling.sample(logits, params, seed, step, out, ws);
                            for (int r = 0; r < rows; r++) {
                                long expected = oracles[r].sample(params, seed, step, r);
                                assertEquals(expected, out.select(0, r).item_long(), dtype + " vocab " + vocab
                                        + (ties ? " with ties " : " ") + params + " step " + step + " row " + r
                                        + " seed " + seed);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void greedyIsArgmaxWithTiesToTheLowestIndex() {
        long seed = freshSeed();
        for (DType dtype : DType.values()) {
            for (long vocab : new long[] {1, 7, 50, 1000, 151_936}) {
                Tensor logits = randn(seed, DType.F32, 3, vocab).to(dtype.scalarType());
                Tensor out = longs(3);
                Sampling.sample(logits, Sampling.Params.greedy(), seed, 0, out, null);
                Tensor expected = torch.argmax(logits.to(torch.ScalarType.Float),
                        new LongOptional(1), false);
                assertTrue(torch.equal(out, expected), "greedy " + dtype + " vocab " + vocab + " seed " + seed);
                // top-k 1 at any temperature is greedy too.
                out.fill_(new Scalar(-1));
                Sampling.sample(logits, new Sampling.Params(0.8, 1, 1.0), seed, 3, out, Sampling.workspace(3, vocab, CPU));
                assertTrue(torch.equal(out, expected), "top-k 1 " + dtype + " vocab " + vocab + " seed " + seed);
            }
        }
        float[] ties = {1f, 3f, -0f, 3f, 3f};
        Tensor t = torch.empty(new long[] {5}, new TensorOptions(torch.ScalarType.Float),
                new MemoryFormatOptional());
        t.data_ptr_float().put(ties);
        assertEquals(1, Sampling.sample(t, Sampling.Params.greedy(), 0, 0));
        float[] zeros = {-0f, 0f, -1f};
        t = t.narrow(0, 0, 3);
        t.data_ptr_float().put(zeros);
        assertEquals(0, Sampling.sample(t, Sampling.Params.greedy(), 0, 0), "-0 ties with +0");
    }

    @Test
    void sameSeedAndStepGiveTheSameIds() {
        long seed = freshSeed();
        Tensor logits = randn(seed, DType.F32, 4, 5000);
        Sampling.Params params = new Sampling.Params(1.0, 0, 1.0);
        Tensor ws = Sampling.workspace(4, 5000, CPU);
        Set<String> distinct = new HashSet<>();
        for (long step = 0; step < 20; step++) {
            Tensor a = longs(4), b = longs(4);
            Sampling.sample(logits, params, seed, step, a, ws);
            Sampling.sample(logits, params, seed, step, b, ws);
            assertTrue(torch.equal(a, b), "seed " + seed + " step " + step);
            // Row r of a batch equals the single-row call... only for row 0, whose counter is (step, 0).
            assertEquals(a.select(0, 0).item_long(), Sampling.sample(logits.select(0, 0), params, seed, step));
            long[] ids = new long[4];
            a.data_ptr_long().get(ids);
            distinct.add(Arrays.toString(ids));
        }
        assertTrue(distinct.size() > 15, "steps should give different draws: " + distinct.size());
        Tensor c = longs(4), d = longs(4);
        Sampling.sample(logits, params, seed, 7, c, ws);
        Sampling.sample(logits, params, seed + 1, 7, d, ws);
        assertFalse(torch.equal(c, d), "another seed should give other draws (seed " + seed + ")");
    }

    @Test
    void tiesAtTheBoundariesGoToTheLowestIndices() {
        Tensor uniform = torch.zeros(new long[] {50}, new TensorOptions(torch.ScalarType.Float));
        long[] k = draw(uniform, new Sampling.Params(1.0, 10, 1.0), 5);
        long[] p = draw(uniform, new Sampling.Params(1.0, 0, 0.5), 6);
        for (int i = 0; i < 50; i++) {
            assertEquals(i < 10, k[i] > 0, "top-k 10 of equal logits keeps tokens 0..9; token " + i);
            assertEquals(i < 25, p[i] > 0, "top-p 0.5 of 50 equal logits keeps tokens 0..24; token " + i);
        }
    }

    @Test
    void infiniteAndNanLogits() {
        float inf = Float.POSITIVE_INFINITY, nan = Float.NaN;
        Tensor t = torch.empty(new long[] {6}, new TensorOptions(torch.ScalarType.Float),
                new MemoryFormatOptional());
        Sampling.Params params = new Sampling.Params(1.0, 0, 1.0);
        t.data_ptr_float().put(new float[] {-inf, 2f, nan, -inf, 2f, -1f});
        for (long step = 0; step < 200; step++) {
            long id = Sampling.sample(t, params, 1, step);
            assertTrue(id == 1 || id == 4 || id == 5, "masked or NaN token drawn: " + id);
        }
        t.data_ptr_float().put(new float[] {-inf, -inf, -inf, -inf, -inf, -inf});
        assertEquals(0, Sampling.sample(t, params, 1, 0), "nothing to draw: greedy");
        t.data_ptr_float().put(new float[] {1f, 2f, inf, 3f, inf, nan});
        assertEquals(2, Sampling.sample(t, params, 1, 0), "+inf: greedy");
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor logits = randn(1, DType.F32, 2, 10);
        Tensor ws = Sampling.workspace(2, 10, CPU);
        Sampling.Params params = new Sampling.Params(1.0, 0, 1.0);
        assertThrows(IllegalArgumentException.class, () -> new Sampling.Params(Double.NaN, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new Sampling.Params(1, 0, 0));
        var e = assertThrows(IllegalArgumentException.class,
                () -> Sampling.sample(logits, params, 0, 0, longs(3), ws));
        assertTrue(e.getMessage().contains("'out' has 3 elements"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Sampling.sample(logits, params, 0, 0, longs(2).to(torch.ScalarType.Int), ws));
        assertTrue(e.getMessage().contains("'out' has dtype Int"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Sampling.sample(logits.t(), params, 0, 0, longs(10), ws));
        assertTrue(e.getMessage().contains("'logits' must have a contiguous vocab"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Sampling.sample(logits, params, 0, 0, longs(2), ws.narrow(0, 0, 8)));
        assertTrue(e.getMessage().contains("'workspace' has 8 bytes"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Sampling.sample(logits.to(torch.ScalarType.Long), params, 0, 0, longs(2), ws));
        assertTrue(e.getMessage().contains("'logits' has dtype Long"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Sampling.sample(logits, params, 0, 0));
        assertTrue(e.getMessage().contains("one row"), e.getMessage());
    }

    @Test
    void nativeErrorsSurfaceWithTheNativeMessage() {
        int status = CpuKernels.INSTANCE.sample(null, 1, 10, 10, 1f, 0, 1f, 0, 0, null, null, 0, 0, null);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals("sample: logits is null", e.getMessage());
        int big = CpuKernels.INSTANCE.sample(null, 1, 1L << 24, 1L << 24, 1f, 0, 1f, 0, 0, null, null, 0, 0, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, big));
        assertTrue(e.getMessage().contains("vocab must be in [1, 8388608]"), e.getMessage());
        Tensor logits = randn(1, DType.F32, 10);
        Tensor out = longs(1);
        int noWorkspace = CpuKernels.INSTANCE.sample(logits.data_ptr(), 1, 10, 10, 1f, 0, 1f, 0, 0, out.data_ptr(), null, 0, 0,
                null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, noWorkspace));
        assertTrue(e.getMessage().contains("workspace of 0 bytes is too small"), e.getMessage());
    }
}
