package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.bound;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The few-row linear against libtorch's linear and matmul in fp64, both directions, every dtype. */
class GemvTest {
    /** {n, k}: odd sizes, and Qwen3-0.6B's q|k|v (4096 x 1024), down (1024 x 3072) projections. */
    private static final long[][] WEIGHTS = {{1, 1}, {7, 33}, {257, 130}, {4096, 1024}, {1024, 3072}};

    static Stream<Arguments> cases() {
        return Stream.of(DType.values()).flatMap(d -> Stream.of(WEIGHTS)
                .flatMap(w -> IntStream.of(1, 3, 8).mapToObj(rows -> Arguments.of(d, rows, w))));
    }

    @ParameterizedTest(name = "{0} rows {1} w {2}")
    @MethodSource("cases")
    void forwardAndBackwardMatchLibtorch(DType dtype, int rows, long[] nk) {
        long seed = freshSeed();
        long n = nk[0];
        long k = nk[1];
        Tensor w = randn(seed, dtype, n, k);
        Tensor x = randn(seed + 1, dtype, rows, k);
        Tensor dy = randn(seed + 2, dtype, rows, n);
        String what = "gemv " + dtype + " rows " + rows + " n " + n + " k " + k + " seed " + seed;

        Tensor y = poisoned(dtype, rows, n);
        Gemv.forward(x, w, y);
        Tensor dx = poisoned(dtype, rows, k);
        Gemv.backward(dy, w, dx);

        Tensor w64 = w.to(torch.ScalarType.Double);
        assertClose(y, torch.linear(x.to(torch.ScalarType.Double), w64), bound(dtype), what + " y = x w^T");
        assertClose(dx, torch.matmul(dy.to(torch.ScalarType.Double), w64), bound(dtype), what + " dx = dy w");
        assertClose(Gemv.forward(x, w), y, 0.0, what + " allocating forward, same values");
        assertClose(Gemv.backward(dy, w), dx, 0.0, what + " allocating backward, same values");
    }

    @Test
    void fitsOnlyFewRowMatrices() {
        assertTrue(Gemv.fits(randn(1, DType.F32, 1, 4)));
        assertTrue(Gemv.fits(randn(1, DType.F32, Gemv.MAX_ROWS, 4)));
        assertFalse(Gemv.fits(randn(1, DType.F32, Gemv.MAX_ROWS + 1, 4)));
        assertFalse(Gemv.fits(randn(1, DType.F32, 4)));
        assertFalse(Gemv.fits(randn(1, DType.F32, 1, 1, 4)));
    }

    @Test
    void badInputsNameTheTensorAtFault() {
        Tensor w = randn(1, DType.F32, 6, 4);
        assertMessage("'x' has 9 rows", () -> Gemv.forward(randn(1, DType.F32, 9, 4), w));
        assertMessage("'x' has shape [2, 5]", () -> Gemv.forward(randn(1, DType.F32, 2, 5), w));
        assertMessage("'w' has dtype", () -> Gemv.forward(randn(1, DType.F32, 2, 4), w.to(torch.ScalarType.BFloat16)));
        assertMessage("'dy' has shape [2, 4]", () -> Gemv.backward(randn(1, DType.F32, 2, 4), w));
        assertMessage("'dx' has shape [2, 6]", () -> Gemv.backward(randn(1, DType.F32, 2, 6), w,
                randn(1, DType.F32, 2, 6)));
        assertMessage("'x' must be contiguous", () -> Gemv.forward(randn(1, DType.F32, 4, 2).t(), w));
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part) && e.getMessage().startsWith("gemv_"), e.getMessage());
    }
}
