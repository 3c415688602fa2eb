package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.bound;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import dev.relat.testing.Autograd;
import java.util.stream.Stream;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * RMSNorm against libtorch's rms_norm, computed in fp32 from the same (rounded) inputs; the
 * backward against libtorch autograd through rms_norm.
 */
class RmsNormTest {
    static Stream<Arguments> cases() {
        long[][] shapes = {{1, 1}, {1, 7}, {3, 33}, {5, 1000}, {2, 3, 129}, {64, 1024}, {17, 4099}};
        return Stream.of(DType.values()).flatMap(d -> Stream.of(shapes).map(s -> Arguments.of(d, s)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void matchesLibtorch(DType dtype, long[] shape) {
        long seed = freshSeed();
        long cols = shape[shape.length - 1];
        long rows = 1;
        for (int i = 0; i < shape.length - 1; i++) rows *= shape[i];
        Tensor x = randn(seed, dtype, shape);
        Tensor w = randn(seed + 1, dtype, cols).add(new Scalar(1.0));
        double eps = 1e-6;

        Tensor y = poisoned(dtype, shape);
        Tensor rstd = poisoned(DType.F32, rows);
        long yAddress = y.data_ptr().address();
        RmsNorm.forward(x, w, eps, y, rstd);
        assertEquals(yAddress, y.data_ptr().address(), "the op writes into the given tensor");

        Tensor xf = x.to(torch.ScalarType.Float);
        Tensor expected = torch.rms_norm(xf, new long[] {cols}, new TensorOptional(w.to(torch.ScalarType.Float)),
                new DoubleOptional(eps));
        String what = "rmsnorm " + dtype + " seed " + seed;
        assertClose(y, expected, bound(dtype), what);
        Tensor expectedRstd = torch.rsqrt(xf.pow(new Scalar(2)).mean(new long[] {-1}, false,
                new ScalarTypeOptional()).add(new Scalar(eps))).reshape(rows);
        assertClose(rstd, expectedRstd, 1e-5, what + " rstd");
    }

    static Stream<Arguments> backwardCases() {
        // cols = 1 is left out: there dx = w dy rstd eps / (x^2 + eps) is pure cancellation.
        long[][] shapes = {{1, 7}, {1, 4096}, {3, 33}, {5, 1000}, {2, 3, 129}, {64, 1024}, {17, 4099}, {300, 40}};
        return Stream.of(DType.values()).flatMap(d -> Stream.of(shapes).map(s -> Arguments.of(d, s)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backwardCases")
    void backwardMatchesAutograd(DType dtype, long[] shape) {
        long seed = freshSeed();
        long cols = shape[shape.length - 1];
        long rows = 1;
        for (int i = 0; i < shape.length - 1; i++) rows *= shape[i];
        Tensor x = randn(seed, dtype, shape);
        Tensor w = randn(seed + 1, dtype, cols).add(new Scalar(1.0));
        Tensor dy = randn(seed + 2, dtype, shape);
        double eps = 1e-6;
        Tensor rstd = poisoned(DType.F32, rows);
        RmsNorm.forward(x, w, eps, poisoned(dtype, shape), rstd);

        Tensor dx = poisoned(dtype, shape);
        Tensor dweight = poisoned(DType.F32, cols);
        RmsNorm.backward(dy, x, w, rstd, dx, dweight, null);

        Tensor xf = Autograd.leaf(x);
        Tensor wf = Autograd.leaf(w);
        Autograd.backward(torch.rms_norm(xf, new long[] {cols}, new TensorOptional(wf), new DoubleOptional(eps)), dy);
        String what = "rmsnorm backward " + dtype + " seed " + seed;
        assertClose(dx, xf.grad(), bound(dtype), what + " dx");
        assertClose(dweight, wf.grad(), bound(dtype), what + " dweight");

        Tensor dxOnly = poisoned(dtype, shape);
        RmsNorm.backward(dy, x, w, rstd, dxOnly, null, null);
        assertClose(dxOnly, dx, 0, what + ": dx without dweight equals dx with it");
    }

    @Test
    void backwardWorkspaceIsReusableAndDxMayAliasDy() {
        long seed = freshSeed();
        Tensor x = randn(seed, DType.F32, 40, 257);
        Tensor w = randn(seed + 1, DType.F32, 257);
        Tensor dy = randn(seed + 2, DType.F32, 40, 257);
        Tensor rstd = poisoned(DType.F32, 40);
        RmsNorm.forward(x, w, 1e-6, poisoned(DType.F32, 40, 257), rstd);
        RmsNorm.Gradients expected = RmsNorm.backwardWithWeight(dy, x, w, rstd);

        long bytes = RmsNorm.backwardWorkspaceBytes(40, 257, false);
        assertTrue(bytes >= 257 * 4, "workspace holds at least one fp32 partial row: " + bytes);
        Tensor workspace = torch.full(new long[] {bytes}, new Scalar(0x7f),
                new TensorOptions(torch.ScalarType.Byte));  // garbage on entry
        Tensor dweight = poisoned(DType.F32, 257);
        Tensor inPlace = dy.clone();
        RmsNorm.backward(inPlace, x, w, rstd, inPlace, dweight, workspace);
        assertClose(inPlace, expected.dx(), 0, "in-place dx seed " + seed);
        assertClose(dweight, expected.dweight(), 0, "dweight with a caller workspace seed " + seed);

        var e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.backward(dy, x, w, rstd,
                poisoned(DType.F32, 40, 257), poisoned(DType.F32, 257), workspace.narrow(0, 0, bytes - 1)));
        assertTrue(e.getMessage().contains("'workspace' has " + (bytes - 1) + " bytes"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.backward(dy, x, w, poisoned(DType.F32, 39)));
        assertTrue(e.getMessage().contains("'rstd' has 39 elements"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.backward(randn(1, DType.F32, 40, 256), x, w, rstd));
        assertTrue(e.getMessage().contains("'dy' has shape [40, 256]"), e.getMessage());
        int status = CpuKernels.INSTANCE.rmsnormBackward(dy.data_ptr(), x.data_ptr(), w.data_ptr(), rstd.data_ptr(),
                inPlace.data_ptr(), dweight.data_ptr(), workspace.data_ptr(), bytes - 4, 40, 257, 0, null);
        var ne = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertTrue(ne.getMessage().startsWith("rmsnorm_backward: workspace has " + (bytes - 4) + " bytes"),
                ne.getMessage());
    }

    @Test
    void outputMayAliasInput() {
        long seed = freshSeed();
        Tensor x = randn(seed, DType.F32, 8, 300);
        Tensor w = randn(seed + 1, DType.F32, 300);
        Tensor expected = RmsNorm.forward(x, w, 1e-5);
        RmsNorm.forward(x, w, 1e-5, x, null);
        assertClose(x, expected, 0, "in-place rmsnorm seed " + seed);
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor x = randn(1, DType.F32, 4, 16);
        Tensor w = randn(2, DType.F32, 16);
        var e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.forward(x, randn(2, DType.F32, 15), 1e-6));
        assertTrue(e.getMessage().contains("'weight' has shape [15]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.forward(x, w.to(torch.ScalarType.BFloat16), 1e-6));
        assertTrue(e.getMessage().contains("'weight' has dtype BFloat16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.forward(x.t(), randn(2, DType.F32, 4), 1e-6));
        assertTrue(e.getMessage().contains("'x' must be contiguous"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> RmsNorm.forward(x.to(torch.ScalarType.Long), w, 1e-6));
        assertTrue(e.getMessage().contains("'x' has dtype Long"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.forward(x, w, 1e-6, poisoned(DType.F32, 4, 15), null));
        assertTrue(e.getMessage().contains("'y' has shape [4, 15]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RmsNorm.forward(x, w, -1));
        assertTrue(e.getMessage().contains("eps"), e.getMessage());
    }

    @Test
    void nativeErrorsSurfaceWithTheNativeMessage() {
        int status = CpuKernels.INSTANCE.rmsnormForward(null, null, null, null, 4, 16, 1e-6f, 0, null);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals(1, e.status());
        assertEquals("rmsnorm_forward: x is null", e.getMessage());
        int badDtype = CpuKernels.INSTANCE.rmsnormForward(null, null, null, null, 4, 16, 1e-6f, 7, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, badDtype));
        assertTrue(e.getMessage().contains("unknown dtype tag 7"), e.getMessage());
    }
}
