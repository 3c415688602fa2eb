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
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Residual add + RMSNorm against libtorch: s = x + r (rounded like the kernel), y = rms_norm(s),
 * and the gradients of x and r from autograd with the residual-stream gradient ds_next on s.
 */
class AddRmsNormTest {
    static Stream<Arguments> cases() {
        long[][] shapes = {{1, 7}, {1, 1024}, {3, 33}, {5, 1000}, {2, 3, 129}, {64, 1024}, {17, 4099}};
        return Stream.of(DType.values()).flatMap(d -> Stream.of(shapes).map(s -> Arguments.of(d, s)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void forwardAndBackwardMatchLibtorch(DType dtype, long[] shape) {
        long seed = freshSeed();
        long cols = shape[shape.length - 1];
        long rows = 1;
        for (int i = 0; i < shape.length - 1; i++) rows *= shape[i];
        Tensor x = randn(seed, dtype, shape);
        Tensor r = randn(seed + 1, dtype, shape);
        Tensor w = randn(seed + 2, dtype, cols).add(new Scalar(1.0));
        Tensor dy = randn(seed + 3, dtype, shape);
        Tensor dsNext = randn(seed + 4, dtype, shape);
        double eps = 1e-6;
        String what = "add_rmsnorm " + dtype + " seed " + seed;

        Tensor s = poisoned(dtype, shape);
        Tensor y = poisoned(dtype, shape);
        Tensor rstd = poisoned(DType.F32, rows);
        AddRmsNorm.forward(x, r, w, eps, s, y, rstd);

        Tensor xf = Autograd.leaf(x);
        Tensor rf = Autograd.leaf(r);
        Tensor wf = Autograd.leaf(w);
        Tensor sf = Autograd.roundedTo(xf.add(rf), dtype);
        Tensor yf = torch.rms_norm(sf, new long[] {cols}, new TensorOptional(wf), new DoubleOptional(eps));
        assertClose(s, sf, bound(dtype), what + " s");
        assertClose(y, yf, bound(dtype), what + " y");

        // L = <y, dy> + <s, ds_next>: dL/dx = dL/dr = rmsnorm_backward(dy) + ds_next.
        Tensor loss = yf.mul(dy.to(torch.ScalarType.Float)).sum().add(sf.mul(dsNext.to(torch.ScalarType.Float)).sum());
        loss.backward();
        Tensor ds = poisoned(dtype, shape);
        Tensor dweight = poisoned(DType.F32, cols);
        AddRmsNorm.backward(dy, dsNext, s, w, rstd, ds, dweight, null);
        assertClose(ds, xf.grad(), bound(dtype), what + " ds vs dx");
        assertClose(ds, rf.grad(), bound(dtype), what + " ds vs dr");
        assertClose(dweight, wf.grad(), bound(dtype), what + " dweight");
    }

    @Test
    void residualUpdatesInPlaceAndGradientAccumulatesInPlace() {
        long seed = freshSeed();
        Tensor x = randn(seed, DType.BF16, 9, 515);
        Tensor r = randn(seed + 1, DType.BF16, 9, 515);
        Tensor w = randn(seed + 2, DType.BF16, 515);
        AddRmsNorm.Result expected = AddRmsNorm.forward(x, r, w, 1e-6);
        Tensor residual = r.clone();
        Tensor y = poisoned(DType.BF16, 9, 515);
        Tensor rstd = poisoned(DType.F32, 9);
        AddRmsNorm.forward(x, residual, w, 1e-6, residual, y, rstd);  // r += x in place
        assertClose(residual, expected.s(), 0, "in-place s seed " + seed);
        assertClose(y, expected.y(), 0, "y seed " + seed);
        assertClose(rstd, expected.rstd(), 0, "rstd seed " + seed);

        Tensor dy = randn(seed + 3, DType.BF16, 9, 515);
        Tensor dsNext = randn(seed + 4, DType.BF16, 9, 515);
        Tensor ds = AddRmsNorm.backward(dy, dsNext, expected.s(), w, expected.rstd());
        Tensor acc = dsNext.clone();
        AddRmsNorm.backward(dy, acc, expected.s(), w, expected.rstd(), acc, null, null);
        assertClose(acc, ds, 0, "in-place ds seed " + seed);
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor x = randn(1, DType.F32, 4, 16);
        Tensor w = randn(2, DType.F32, 16);
        var e = assertThrows(IllegalArgumentException.class,
                () -> AddRmsNorm.forward(x, randn(3, DType.F32, 4, 15), w, 1e-6));
        assertTrue(e.getMessage().contains("'r' has shape [4, 15]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> AddRmsNorm.forward(x, x.to(torch.ScalarType.BFloat16), w, 1e-6));
        assertTrue(e.getMessage().contains("'r' has dtype BFloat16"), e.getMessage());
        Tensor s = poisoned(DType.F32, 4, 16);
        e = assertThrows(IllegalArgumentException.class, () -> AddRmsNorm.forward(x, x, w, 1e-6, s, s, null));
        assertTrue(e.getMessage().contains("'y' must not share storage with 's'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AddRmsNorm.backward(x, randn(3, DType.F32, 4, 17),
                x, w, poisoned(DType.F32, 4)));
        assertTrue(e.getMessage().contains("'ds_next' has shape [4, 17]"), e.getMessage());
    }
}
