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
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** SwiGLU against libtorch silu(gate) * up and its autograd, two-input and fused [gate | up]. */
class SwiGluTest {
    static Stream<Arguments> cases() {
        long[][] shapes = {{1, 1}, {1, 7}, {1, 3072}, {3, 33}, {5, 1000}, {2, 3, 129}, {64, 1024}, {17, 3075}};
        return Stream.of(DType.values()).flatMap(d -> Stream.of(shapes).map(s -> Arguments.of(d, s)));
    }

    /** Inputs scaled by 3 so that silu's saturating tails are exercised too. */
    private static Tensor input(long seed, DType dtype, long... shape) {
        return randn(seed, DType.F32, shape).mul(new Scalar(3.0)).to(dtype.scalarType());
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void twoInputsMatchLibtorch(DType dtype, long[] shape) {
        long seed = freshSeed();
        Tensor gate = input(seed, dtype, shape);
        Tensor up = input(seed + 1, dtype, shape);
        Tensor dout = randn(seed + 2, dtype, shape);
        String what = "swiglu " + dtype + " seed " + seed;

        Tensor out = poisoned(dtype, shape);
        SwiGlu.forward(gate, up, out);
        Tensor dgate = poisoned(dtype, shape);
        Tensor dup = poisoned(dtype, shape);
        SwiGlu.backward(dout, gate, up, dgate, dup);

        Tensor gf = Autograd.leaf(gate);
        Tensor uf = Autograd.leaf(up);
        Tensor expected = torch.silu(gf).mul(uf);
        Autograd.backward(expected, dout);
        assertClose(out, expected, bound(dtype), what + " out");
        assertClose(dgate, gf.grad(), bound(dtype), what + " dgate");
        assertClose(dup, uf.grad(), bound(dtype), what + " dup");
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void fusedProjectionMatchesLibtorch(DType dtype, long[] shape) {
        long seed = freshSeed();
        long[] guShape = shape.clone();
        guShape[guShape.length - 1] *= 2;
        Tensor gu = input(seed, dtype, guShape);
        Tensor dout = randn(seed + 2, dtype, shape);
        String what = "swiglu fused " + dtype + " seed " + seed;

        Tensor out = poisoned(dtype, shape);
        SwiGlu.forwardFused(gu, out);
        Tensor dgu = poisoned(dtype, guShape);
        SwiGlu.backwardFused(dout, gu, dgu);

        Tensor guf = Autograd.leaf(gu);
        TensorVector halves = guf.chunk(2, -1);
        Tensor expected = torch.silu(halves.get(0)).mul(halves.get(1));
        Autograd.backward(expected, dout);
        assertClose(out, expected, bound(dtype), what + " out");
        assertClose(dgu, guf.grad(), bound(dtype), what + " dgu");
    }

    @Test
    void gradientsMayOverwriteTheInputs() {
        long seed = freshSeed();
        Tensor gu = input(seed, DType.BF16, 5, 2 * 301);
        Tensor dout = randn(seed + 1, DType.BF16, 5, 301);
        Tensor expected = SwiGlu.backwardFused(dout, gu);
        Tensor inPlace = gu.clone();
        SwiGlu.backwardFused(dout, inPlace, inPlace);
        assertClose(inPlace, expected, 0, "in-place dgu seed " + seed);
        Tensor gate = input(seed + 2, DType.F32, 4, 64);
        Tensor out = SwiGlu.forward(gate, gate);
        Tensor g2 = gate.clone();
        SwiGlu.forward(g2, gate, g2);
        assertClose(g2, out, 0, "out written over gate seed " + seed);
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor g = randn(1, DType.F32, 4, 16);
        var e = assertThrows(IllegalArgumentException.class, () -> SwiGlu.forward(g, randn(2, DType.F32, 4, 15)));
        assertTrue(e.getMessage().contains("'up' has shape [4, 15]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SwiGlu.forwardFused(randn(2, DType.F32, 4, 15)));
        assertTrue(e.getMessage().contains("'gu' has last dimension 15"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> SwiGlu.backwardFused(randn(2, DType.F32, 4, 16), randn(2, DType.F32, 4, 16)));
        assertTrue(e.getMessage().contains("'dout' has shape [4, 16]; expected [4, 8]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> SwiGlu.backward(g, g, g.to(torch.ScalarType.Half)));
        assertTrue(e.getMessage().contains("'up' has dtype Half"), e.getMessage());
    }
}
