package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.assertCloseAtScale;
import static dev.relat.testing.TensorAssert.assertWithin;
import static dev.relat.testing.TensorAssert.bound;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import dev.relat.ops.LinearCrossEntropy.CpuGemm;
import java.util.Random;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fused linear cross-entropy against libtorch's composition, linear + cross_entropy (mean,
 * ignore_index) with autograd for dL/dh, computed in fp32 from the same (rounded) inputs: the
 * reference for bf16/fp16 storage is the exact math on the stored values, so the bound measures the
 * kernel, not libtorch's own bf16 rounding of the logits. The CPU kernel's two GEMM paths (OpenBLAS,
 * the default under libtorch, and the built-in micro-kernels) are each checked.
 */
class LinearCrossEntropyTest {
    private static final long IGNORE = LinearCrossEntropy.IGNORE_INDEX;

    /**
     * {tokens, hidden, vocab}: tokens 1 and > one built-in block (96); vocab below, at and past the
     * built-in 192-row tile, and past the OpenBLAS path's tiles (4096 rows up to 256 tokens: 8193 is
     * 4096 + 4096 + 1; 896 rows at 1100 tokens: 2000 is 896 + 896 + 208).
     */
    static final long[][] SHAPES = {
        {1, 8, 5}, {1, 64, 1000}, {3, 33, 192}, {7, 33, 193}, {16, 100, 777}, {40, 129, 3001},
        {97, 72, 1500}, {130, 17, 400}, {5, 1030, 257}, {2, 24, 8193}, {1100, 16, 2000},
    };

    static final CpuGemm[] GEMMS = {CpuGemm.OPENBLAS, CpuGemm.BUILTIN};

    static Stream<Arguments> cases() {
        return Stream.of(GEMMS).flatMap(g -> Stream.of(DType.values())
                .flatMap(d -> Stream.of(SHAPES).map(s -> Arguments.of(g, d, s))));
    }

    static Stream<Arguments> gemmsAndDtypes() {
        return Stream.of(GEMMS).flatMap(g -> Stream.of(DType.values()).map(d -> Arguments.of(g, d)));
    }

    /** Runs body with the CPU kernel on the given GEMM, then goes back to the default. */
    static void withGemm(CpuGemm gemm, Runnable body) {
        LinearCrossEntropy.useCpuGemm(gemm);
        try {
            assertEquals(gemm, LinearCrossEntropy.cpuGemm());
            body.run();
        } finally {
            LinearCrossEntropy.useCpuGemm(CpuGemm.AUTO);
        }
    }

    /** Random targets; about a quarter of the positions ignored (never all of them). */
    static long[] targets(long seed, long tokens, long vocab, double ignored) {
        Random r = new Random(seed);
        long[] t = new long[(int) tokens];
        for (int i = 0; i < t.length; i++) t[i] = r.nextDouble() < ignored ? IGNORE : r.nextInt((int) vocab);
        if (t.length > 0 && java.util.Arrays.stream(t).allMatch(x -> x == IGNORE)) t[r.nextInt(t.length)] = 0;
        return t;
    }

    /** libtorch: loss = cross_entropy(h u^T, t, mean, ignore_index) and dL/dh by autograd, in fp32. */
    static Tensor[] reference(Tensor h, Tensor u, Tensor targets) {
        Tensor hf = h.to(torch.ScalarType.Float).detach().requires_grad_(true);
        Tensor uf = u.to(torch.ScalarType.Float);
        Tensor logits = torch.linear(hf, uf);
        Tensor loss = torch.cross_entropy_loss(logits, targets, new TensorOptional(), 1 /* mean */, IGNORE, 0.0);
        loss.backward();
        return new Tensor[] {loss.detach(), hf.grad()};
    }

    /** h scaled so the logits spread over a few units (a realistic, non-uniform softmax). */
    static Tensor[] inputs(long seed, DType dtype, long tokens, long hidden, long vocab) {
        Tensor h = randn(seed, dtype, tokens, hidden);
        Tensor u = randn(seed + 1, DType.F32, vocab, hidden).mul(new Scalar(2.0 / Math.sqrt(hidden)))
                .to(dtype.scalarType());
        return new Tensor[] {h, u};
    }

    void check(DType dtype, long tokens, long hidden, long vocab, long[] t, long seed, String what) {
        Tensor[] in = inputs(seed, dtype, tokens, hidden, vocab);
        Tensor h = in[0], u = in[1];
        Tensor targets = Tensor.create(t);
        Tensor loss = poisoned(DType.F32);
        Tensor dh = poisoned(dtype, tokens, hidden);
        long dhAddress = dh.data_ptr().address();
        LinearCrossEntropy.forwardBackward(h, u, targets, IGNORE, loss, dh);
        assertEquals(dhAddress, dh.data_ptr().address(), "the op writes into the given tensor");

        Tensor[] ref = reference(h, u, targets);
        String tag = what + " " + dtype + " T=" + tokens + " d=" + hidden + " V=" + vocab + " seed " + seed;
        // At the scale of the terms, as in confidentPredictions: a row whose prediction happens to be
        // confident makes both the loss (lse - logit_t) and dH ((p_t - 1) U_t + ...) differences
        // of nearly equal terms (T = 1, V = 5 reached 1.1e-5 relative to the values, both GEMMs).
        double logit = torch.max(torch.abs(torch.linear(h.to(torch.ScalarType.Float), u.to(torch.ScalarType.Float))))
                .item_double();
        long counted = java.util.Arrays.stream(t).filter(x -> x != IGNORE).count();
        assertCloseAtScale(loss, ref[0], logit, 1e-5, tag + " loss, error of the largest logit");
        assertCloseAtScale(dh, ref[1], torch.max(torch.abs(u.to(torch.ScalarType.Float))).item_double() / counted,
                bound(dtype), tag + " dh, error of max |U| / count");
        // Ignored rows are exactly zero.
        for (int i = 0; i < t.length; i++) {
            if (t[i] == IGNORE) {
                assertEquals(0.0, torch.max(torch.abs(dh.select(0, i).to(torch.ScalarType.Float))).item_double(),
                        tag + " ignored row " + i);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void matchesLibtorch(CpuGemm gemm, DType dtype, long[] shape) {
        long seed = freshSeed();
        long[] t = targets(seed, shape[0], shape[2], 0.25);
        withGemm(gemm, () -> check(dtype, shape[0], shape[1], shape[2], t, seed, gemm + " random ignores"));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("gemmsAndDtypes")
    void allButOneIgnored(CpuGemm gemm, DType dtype) {
        long seed = freshSeed();
        long tokens = 50, vocab = 700;
        long[] t = new long[(int) tokens];
        java.util.Arrays.fill(t, IGNORE);
        Random r = new Random(seed);
        t[r.nextInt(t.length)] = r.nextInt((int) vocab);
        withGemm(gemm, () -> check(dtype, tokens, 40, vocab, t, seed, gemm + " all but one ignored"));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("gemmsAndDtypes")
    void targetsAtTheEdgesOfTheVocabulary(CpuGemm gemm, DType dtype) {
        long seed = freshSeed();
        // Built-in tiles of 192 rows here (... 8064 + 129), OpenBLAS tiles of 4096 (4096 + 4096 + 1).
        long vocab = 8193;
        long[] t = {0, vocab - 1, 191, 192, 383, 384, 4095, 4096, 8191, IGNORE, 7};
        withGemm(gemm, () -> check(dtype, t.length, 24, vocab, t, seed, gemm + " edge targets"));
    }

    /**
     * Confident predictions (p_target ~ 0.9999): the gradient of a counted row is then tiny and is
     * the difference of two nearly equal terms, p_t U[t] - U[t], unless the kernel forms p_t - 1
     * directly. h gets a component along U[target] that lifts the target's logit by ~14.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("gemmsAndDtypes")
    void confidentPredictions(CpuGemm gemm, DType dtype) {
        withGemm(gemm, () -> confidentPredictions(dtype));
    }

    void confidentPredictions(DType dtype) {
        long seed = freshSeed();
        long tokens = 9, hidden = 64, vocab = 500;
        long[] t = targets(seed, tokens, vocab, 0.0);
        Tensor u = randn(seed + 1, DType.F32, vocab, hidden).mul(new Scalar(0.5 / Math.sqrt(hidden)))
                .to(dtype.scalarType());
        Tensor uf = u.to(torch.ScalarType.Float);
        Tensor ut = uf.index_select(0, Tensor.create(t));
        Tensor norms = ut.pow(new Scalar(2)).sum(new long[] {1}, true, new ScalarTypeOptional());
        Tensor h = randn(seed + 2, DType.F32, tokens, hidden).mul(new Scalar(0.1))
                .add(ut.div(norms).mul(new Scalar(14.0))).to(dtype.scalarType());
        Tensor targets = Tensor.create(t);
        Tensor loss = poisoned(DType.F32);
        Tensor dh = poisoned(dtype, tokens, hidden);
        LinearCrossEntropy.forwardBackward(h, u, targets, IGNORE, loss, dh);
        Tensor[] ref = reference(h, u, targets);
        String what = "confident " + dtype; // the check's name: the same on every seed, for sweeps
        assertTrue(ref[0].item_double() < 0.01, what + " seed " + seed + " loss " + ref[0].item_double()
                + ": the setup should give confident predictions");
        // Both loss (lse - logit_t) and dH ((p_t - 1) U_t + ...) are now differences of nearly equal
        // quantities: any fp32 evaluation, libtorch's included, is only accurate relative to the
        // size of the terms, |logit_t| for the loss and max |U| / count for dH.
        double logit = torch.max(torch.abs(h.to(torch.ScalarType.Float).mm(uf.t()))).item_double();
        double lossErr = Math.abs(loss.item_double() - ref[0].item_double()) / logit;
        assertWithin(lossErr, 1e-5, what + ": loss error of the largest logit");
        double terms = torch.max(torch.abs(uf)).item_double() / tokens;
        double dhErr = torch.max(torch.abs(dh.to(torch.ScalarType.Float).sub(ref[1]))).item_double() / terms;
        assertWithin(dhErr, bound(dtype), what + ": dh error of max |U| / count");
        assertTrue(!torch.any(torch.isnan(dh)).item_bool(), what + ": dh has NaN");
    }

    /**
     * The counted rows are dealt into blocks of unequal size (whole 16-row panels, a multiple of the
     * worker count); the plan depends on the thread count, so several counts exercise other splits:
     * 1 thread (one block per 96 rows), 3 (uneven panels per block), 8 (vocabulary ranges too).
     * (The built-in path's layout; the OpenBLAS path hands all rows to one sgemm per tile.)
     */
    @ParameterizedTest(name = "{0} threads")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 3, 8})
    void balancedBlocksAtSeveralThreadCounts(int threads) {
        int saved = torch.get_num_threads();
        try {
            torch.set_num_threads(threads);
            long seed = freshSeed();
            withGemm(CpuGemm.BUILTIN, () -> {
                check(DType.F32, 300, 40, 777, targets(seed, 300, 777, 0.2), seed, threads + " threads");
                check(DType.BF16, 21, 40, 777, targets(seed + 5, 21, 777, 0.0), seed + 5, threads + " threads");
            });
        } finally {
            torch.set_num_threads(saved);
        }
    }

    /** libtorch loads libopenblas.so.0, so by default the CPU kernel finds and uses it. */
    @Test
    void openBlasIsTheDefaultUnderLibtorch() {
        assertEquals(CpuGemm.OPENBLAS, LinearCrossEntropy.cpuGemm());
        int status = CpuKernels.INSTANCE.setGemm(7);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertTrue(e.getMessage().contains("unknown GEMM 7"), e.getMessage());
        assertEquals(CpuGemm.OPENBLAS, LinearCrossEntropy.cpuGemm(), "a rejected setting changes nothing");
    }

    @Test
    void allIgnoredGivesNanLossAndZeroGradient() {
        Tensor h = randn(1, DType.F32, 4, 16);
        Tensor u = randn(2, DType.F32, 30, 16);
        Tensor targets = Tensor.create(IGNORE, IGNORE, IGNORE, IGNORE);
        Tensor loss = poisoned(DType.F32);
        Tensor dh = poisoned(DType.F32, 4, 16);
        LinearCrossEntropy.forwardBackward(h, u, targets, IGNORE, loss, dh);
        assertTrue(Double.isNaN(loss.item_double()), "mean over no position is NaN, as in libtorch");
        Tensor ref = reference(h, u, targets)[0];
        assertTrue(Double.isNaN(ref.item_double()), "libtorch agrees");
        assertEquals(0.0, torch.max(torch.abs(dh)).item_double());
    }

    @Test
    void customIgnoreIndexAndOutOfRangeTarget() {
        long seed = freshSeed();
        Tensor h = randn(seed, DType.F32, 3, 16);
        Tensor u = randn(seed + 1, DType.F32, 30, 16);
        var r = LinearCrossEntropy.forwardBackward(h, u, Tensor.create(5L, -1L, 7L), -1);
        Tensor ref = reference(h, u, Tensor.create(5L, IGNORE, 7L))[0];
        assertClose(r.loss(), ref, 1e-5, "ignore index -1 seed " + seed);
        var bad = LinearCrossEntropy.forwardBackward(h, u, Tensor.create(5L, 30L, 7L));
        assertTrue(Double.isNaN(bad.loss().item_double()), "a target past the vocabulary poisons the loss");
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor h = randn(1, DType.F32, 4, 16);
        Tensor u = randn(2, DType.F32, 30, 16);
        Tensor t = Tensor.create(1L, 2L, 3L, 4L);
        var e = assertThrows(IllegalArgumentException.class,
                () -> LinearCrossEntropy.forwardBackward(h, randn(2, DType.F32, 30, 15), t));
        assertTrue(e.getMessage().contains("'u' has shape [30, 15]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LinearCrossEntropy.forwardBackward(h, u.to(torch.ScalarType.BFloat16), t));
        assertTrue(e.getMessage().contains("'u' has dtype BFloat16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LinearCrossEntropy.forwardBackward(h, u, t.to(torch.ScalarType.Int)));
        assertTrue(e.getMessage().contains("'targets' has dtype Int"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LinearCrossEntropy.forwardBackward(h, u, Tensor.create(1L, 2L)));
        assertTrue(e.getMessage().contains("'targets' has 2 elements"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LinearCrossEntropy.forwardBackward(h.t(), randn(2, DType.F32, 30, 4), t));
        assertTrue(e.getMessage().contains("'h' must be contiguous"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LinearCrossEntropy.forwardBackward(h, u, t,
                IGNORE, poisoned(DType.F32), poisoned(DType.F32, 4, 15)));
        assertTrue(e.getMessage().contains("'dh' has shape [4, 15]"), e.getMessage());
    }

    @Test
    void nativeErrorsSurfaceWithTheNativeMessage() {
        int status = CpuKernels.INSTANCE.linearCrossEntropy(null, null, null, IGNORE, null, null, 4, 16, 30, null, 0, 0, null);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals("linear_cross_entropy: loss is null", e.getMessage());
        Tensor h = randn(1, DType.F32, 4, 16);
        Tensor u = randn(2, DType.F32, 30, 16);
        Tensor t = Tensor.create(1L, 2L, 3L, 4L);
        Tensor loss = poisoned(DType.F32);
        Tensor dh = poisoned(DType.F32, 4, 16);
        int small = CpuKernels.INSTANCE.linearCrossEntropy(h.data_ptr(), u.data_ptr(), t.data_ptr(), IGNORE, loss.data_ptr(),
                dh.data_ptr(), 4, 16, 30, dh.data_ptr(), 8, 0, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, small));
        assertTrue(e.getMessage().contains("workspace has 8 bytes"), e.getMessage());
    }

    /**
     * Acceptance: at T = 512, d = 4096, V = 151,936 the fused op's extra memory (its whole workspace:
     * the kernels allocate nothing else) is at most 1/10 of what the libtorch composition must
     * allocate for the [T, V] logits and their gradient (two [T, V] tensors in the storage dtype;
     * libtorch in fact also keeps the [T, V] log-softmax for its backward, which we do not count).
     * The relat number is the workspace query of each library, the libtorch number the size of
     * those tensors, which the composition cannot avoid. The CPU workspace depends on the OpenMP
     * thread count, so it is checked at this machine's count and at 1, 8 and 64 threads.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("gemmsAndDtypes")
    void extraMemoryIsAtMostATenthOfTheLogitsAndTheirGradient(CpuGemm gemm, DType dtype) {
        withGemm(gemm, () -> extraMemory(gemm, dtype));
    }

    void extraMemory(CpuGemm gemm, DType dtype) {
        long tokens = 512, hidden = 4096, vocab = 151_936;
        long libtorch = 2 * tokens * vocab * (dtype == DType.F32 ? 4 : 2);
        long cpu = LinearCrossEntropy.workspaceBytes(tokens, hidden, vocab, dtype, false);
        System.out.printf("linear_cross_entropy extra memory %s T=%d d=%d V=%d: libtorch logits+grad %.1f MB,"
                + " relat cpu workspace %.1f MB (%s, %d threads, ratio 1/%.1f)%n", dtype, tokens, hidden, vocab,
                libtorch / 1e6, cpu / 1e6, gemm, torch.get_num_threads(), (double) libtorch / cpu);
        assertTrue(cpu * 10 <= libtorch, "cpu workspace " + cpu + " vs " + libtorch);
        int threads = torch.get_num_threads();
        try {
            for (int t : new int[] {1, 8, 64}) {
                torch.set_num_threads(t);
                long bytes = LinearCrossEntropy.workspaceBytes(tokens, hidden, vocab, dtype, false);
                assertTrue(bytes * 10 <= libtorch, "cpu workspace at " + t + " threads: " + bytes);
            }
        } finally {
            torch.set_num_threads(threads);
        }
        Long cuda = cudaWorkspace(tokens, hidden, vocab, dtype);
        if (cuda != null) {
            System.out.printf("  relat cuda workspace %.1f MB (ratio 1/%.1f)%n", cuda / 1e6, (double) libtorch / cuda);
            assertTrue(cuda * 10 <= libtorch, "cuda workspace " + cuda + " vs " + libtorch);
        }
    }

    /** The CUDA library's workspace query is host code: it answers without a GPU when the library loads. */
    static Long cudaWorkspace(long tokens, long hidden, long vocab, DType dtype) {
        try {
            CudaKernels.load();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            return null;
        }
        long[] bytes = new long[1];
        Kernels.check(CudaKernels.INSTANCE,
                CudaKernels.INSTANCE.linearCrossEntropyWorkspaceBytes(tokens, hidden, vocab, dtype.tag, bytes));
        return bytes[0];
    }
}
