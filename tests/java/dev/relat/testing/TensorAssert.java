package dev.relat.testing;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.ops.DType;
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

    /** A fresh seed ({@link Seeds#fresh()}: the replay seed when -Drelat.test.seed is set). */
    public static long freshSeed() {
        return Seeds.fresh();
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

    /** sqrt(mean (actual - expected)^2) / sqrt(mean expected^2): a typical error, not the largest. */
    public static double rmsRelativeError(Tensor actual, Tensor expected) {
        Tensor a = actual.to(torch.ScalarType.Double);
        Tensor e = expected.to(torch.ScalarType.Double);
        return a.sub(e).pow(new Scalar(2)).mean().sqrt().item_double() / e.pow(new Scalar(2)).mean().sqrt().item_double();
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
        assertWithin(err, bound, what);
    }

    /**
     * value <= bound, recorded for the seed sweep (-Drelat.test.record); the failure message names
     * the check, both numbers and the seed this thread drew last, with how to replay it.
     */
    public static void assertWithin(double value, double bound, String what) {
        long seed = Seeds.current().orElse(0L);
        Seeds.record(what, value, bound, seed);
        if (!(value <= bound)) {
            throw new AssertionError(String.format("%s: %.3e exceeds the bound %.1e; %s", what, value, bound,
                    Seeds.current().map(Seeds::describe).orElse("no random seed drawn")));
        }
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
