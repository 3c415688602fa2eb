package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.bound;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.testing.Autograd;
import java.util.stream.Stream;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Qwen3 QK-norm (per-head RMSNorm) against libtorch rms_norm over [T, H, D] and its autograd. */
class QkNormTest {
    static Stream<Arguments> cases() {
        // {T, H, D, flat}: flat = 1 passes x as [T, H*D].
        long[][] shapes = {{1, 1, 128, 0}, {1, 16, 128, 1}, {5, 8, 128, 0}, {7, 32, 128, 1}, {3, 4, 7, 0},
            {2, 3, 33, 1}, {4, 2, 100, 0}, {1, 1, 1000, 0}, {33, 16, 64, 0}};
        return Stream.of(DType.values()).flatMap(d -> Stream.of(shapes).map(s -> Arguments.of(d, s)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void forwardAndBackwardMatchLibtorch(DType dtype, long[] spec) {
        long seed = freshSeed();
        long t = spec[0], h = spec[1], d = spec[2];
        long[] shape = spec[3] == 1 ? new long[] {t, h * d} : new long[] {t, h, d};
        Tensor x = randn(seed, dtype, shape);
        Tensor w = randn(seed + 1, dtype, d).add(new Scalar(1.0));
        Tensor dy = randn(seed + 2, dtype, shape);
        double eps = 1e-6;
        String what = "qk_norm " + dtype + " " + java.util.Arrays.toString(shape) + " seed " + seed;

        Tensor y = poisoned(dtype, shape);
        Tensor rstd = poisoned(DType.F32, t * h);
        QkNorm.forward(x, w, eps, y, rstd);
        Tensor dx = poisoned(dtype, shape);
        Tensor dweight = poisoned(DType.F32, d);
        QkNorm.backward(dy, x, w, rstd, dx, dweight, null);

        Tensor xf = Autograd.leaf(x);
        Tensor wf = Autograd.leaf(w);
        Tensor yf = torch.rms_norm(xf.view(t, h, d), new long[] {d}, new TensorOptional(wf), new DoubleOptional(eps));
        Autograd.backward(yf, dy.view(t, h, d));
        assertClose(y, yf.view(shape), bound(dtype), what + " y");
        Tensor xd = x.to(torch.ScalarType.Float).view(t * h, d);
        Tensor expectedRstd = torch.rsqrt(xd.mul(xd).mean(new long[] {-1}, false,
                new ScalarTypeOptional()).add(new Scalar(eps)));
        assertClose(rstd, expectedRstd, 1e-5, what + " rstd");
        assertClose(dx, xf.grad(), bound(dtype), what + " dx");
        assertClose(dweight, wf.grad(), bound(dtype), what + " dweight");
    }

    @Test
    void convenienceFormsAgree() {
        long seed = freshSeed();
        Tensor x = randn(seed, DType.BF16, 6, 4, 128);
        Tensor w = randn(seed + 1, DType.BF16, 128);
        QkNorm.Result r = QkNorm.forwardWithRstd(x, w, 1e-6);
        assertClose(QkNorm.forward(x, w, 1e-6), r.y(), 0, "forward seed " + seed);
        Tensor dy = randn(seed + 2, DType.BF16, 6, 4, 128);
        Tensor dx = QkNorm.backward(dy, x, w, r.rstd());
        Tensor expected = RmsNorm.backward(dy, x, w, r.rstd());
        assertClose(dx, expected, 0, "same rows as RmsNorm over [T, H, D] seed " + seed);
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor x = randn(1, DType.F32, 2, 3, 8);
        var e = assertThrows(IllegalArgumentException.class, () -> QkNorm.forward(x, randn(2, DType.F32, 5), 1e-6));
        assertTrue(e.getMessage().contains("'x' has last dimension 8, not a multiple of the head dimension 5"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> QkNorm.forward(x, randn(2, DType.F32, 2, 4), 1e-6));
        assertTrue(e.getMessage().contains("'weight' has shape [2, 4]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> QkNorm.backward(x, x, randn(2, DType.F32, 8), poisoned(DType.F32, 5)));
        assertTrue(e.getMessage().contains("'rstd' has 5 elements; expected one per row (6)"), e.getMessage());
    }
}
