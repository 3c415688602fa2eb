package dev.relat.testing;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.ops.DType;
import java.util.Random;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Test helpers shared by the kernel tests: fresh random data, NaN poisoning and relative-error
 * comparison. Relative error is max|actual - expected| / max|expected| over the whole tensor.
 */
public final class TensorAssert {
    private TensorAssert() {}

    /** Fresh seed per call (printed in failure messages, so a failure can be replayed). */
    public static long freshSeed() {
        return new Random().nextLong();
    }

    public static Tensor randn(long seed, DType dtype, long... shape) {
        torch.manual_seed(seed);
        return torch.randn(shape, new TensorOptions(torch.ScalarType.Float)).to(dtype.scalarType());
    }

    /** A tensor of NaNs: any element a kernel fails to write stays NaN and fails the comparison. */
    public static Tensor poisoned(DType dtype, long... shape) {
        return torch.full(shape, new Scalar(Double.NaN), new TensorOptions(dtype.scalarType()));
    }

    public static double relativeError(Tensor actual, Tensor expected) {
        Tensor a = actual.to(torch.ScalarType.Double);
        Tensor e = expected.to(torch.ScalarType.Double);
        double scale = torch.max(torch.abs(e)).item_double();
        double diff = torch.max(torch.abs(a.sub(e))).item_double();
        return diff / scale;
    }

    /** Fails when any element is NaN, when expected is all zeros, or when the error exceeds bound. */
    public static void assertClose(Tensor actual, Tensor expected, double bound, String what) {
        assertCloseAtScale(actual, expected, torch.max(torch.abs(expected.to(torch.ScalarType.Double))).item_double(),
                bound, what);
    }

    /**
     * max |actual - expected| <= bound * scale, no NaN. For values formed by a difference that can
     * cancel to near zero, scale is the size of the operands rather than of the result.
     */
    public static void assertCloseAtScale(Tensor actual, Tensor expected, double scale, double bound, String what) {
        assertFalse(torch.any(torch.isnan(actual)).item_bool(), what + ": output has NaN (unwritten or invalid)");
        assertTrue(scale > 0, what + ": zero scale (reference all zeros), the comparison would prove nothing");
        double err = torch.max(torch.abs(actual.to(torch.ScalarType.Double).sub(expected.to(torch.ScalarType.Double))))
                .item_double() / scale;
        assertTrue(err <= bound, String.format("%s: relative error %.3e exceeds %.1e", what, err, bound));
    }

    /** The stated bound per storage type: fp32 1e-5, bf16 1e-2, fp16 1e-3. */
    public static double bound(DType dtype) {
        return switch (dtype) {
            case F32 -> 1e-5;
            case BF16 -> 1e-2;
            case F16 -> 1e-3;
        };
    }
}
