package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertCloseAtScale;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.testing.Seeds;
import java.util.Arrays;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Segmented LoRA against libtorch: per-segment matmuls in fp64 give y, da, db and dx; ragged
 * segments, empty ones included; fp32 and bf16. The outputs accumulate, so they start from random
 * values (a skipped row shows as an error the size of its delta). Errors are max |got - want| over
 * max |want| per output; the bounds sit 2x above the worst of a seed sweep (tests/seed-sweep.sh).
 * Isolation: a segment's outputs are the same bits whatever the other segments hold, however many
 * there are and wherever the segment starts.
 */
class SegmentedLoraTest {
    /** {in, out, rank, segment sizes...}: odd sizes, Qwen3-0.6B's gate/up (1024 to 3072) and down. */
    private static final long[][] CASES = {
        {64, 96, 8, 3, 0, 5},
        {130, 257, 5, 0, 4, 1, 0},
        {33, 17, 64, 9},
        {1024, 3072, 16, 1, 0, 7, 2},
        {3072, 1024, 8, 2, 5},
        {40, 24, 3, 0, 0},
    };

    static Stream<Arguments> cases() {
        return Stream.of(DType.F32, DType.BF16).flatMap(d -> IntStream.range(0, Seeds.repeat()).boxed()
                .flatMap(r -> Stream.of(CASES).map(c -> Arguments.of(d, c))));
    }

    /**
     * 2x (rounded up) the worst of a sweep over 20 seeds per case (tests/seed-sweep.sh -n 4 -r 5):
     * fp32 y 3.7e-7, dx 1.6e-6, da 1.9e-6, db 5.8e-7; bf16 y 3.7e-3, dx 4.8e-3 (the deltas' last-bit
     * rounding against the fp64 reference's), da 1.9e-6, db 5.3e-7 (fp32 sums of exact inputs).
     */
    private static double bound(DType dtype, String output) {
        return switch (output) {
            case "y" -> dtype == DType.F32 ? 1e-6 : 8e-3;
            case "dx" -> dtype == DType.F32 ? 4e-6 : 1e-2;
            case "da" -> 4e-6;
            default -> 2e-6;
        };
    }

    private record Problem(Tensor x, Tensor dy, Tensor a, Tensor b, Tensor offsets, Tensor y, Tensor dx, Tensor da,
            Tensor db, double scale) {}

    private static Problem problem(long seed, DType dtype, long in, long out, long rank, long[] sizes) {
        long rows = Arrays.stream(sizes).sum();
        long segments = sizes.length;
        long[] off = new long[sizes.length + 1];
        for (int s = 0; s < sizes.length; s++) off[s + 1] = off[s] + sizes[s];
        // a ~ 1/sqrt(in) and b ~ 1/sqrt(rank): deltas of the size of y's starting values.
        Tensor a = randn(seed + 3, DType.F32, segments, rank, in).div(new Scalar(Math.sqrt(in)));
        Tensor b = randn(seed + 4, DType.F32, segments, out, rank).div(new Scalar(Math.sqrt(rank)));
        return new Problem(randn(seed, dtype, rows, in), randn(seed + 1, dtype, rows, out), a, b,
                torch.tensor(off), randn(seed + 2, dtype, rows, out), randn(seed + 5, dtype, rows, in),
                randn(seed + 6, DType.F32, segments, rank, in), randn(seed + 7, DType.F32, segments, out, rank),
                0.5 + (seed & 7) / 4.0);
    }

    private static Tensor f64(Tensor t) {
        return t.to(torch.ScalarType.Double);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void forwardAndGradientsMatchLibtorch(DType dtype, long[] c) {
        long seed = freshSeed();
        long in = c[0];
        long out = c[1];
        long rank = c[2];
        long[] sizes = Arrays.copyOfRange(c, 3, c.length);
        Problem p = problem(seed, dtype, in, out, rank, sizes);
        String what = "lora_segmented " + dtype + " in " + in + " out " + out + " rank " + rank + " segments "
                + Arrays.toString(sizes) + " seed " + seed;

        Tensor y = p.y().clone();
        Tensor dx = p.dx().clone();
        Tensor da = p.da().clone();
        Tensor db = p.db().clone();
        SegmentedLora.forward(p.x(), p.a(), p.b(), p.offsets(), p.scale(), y);
        SegmentedLora.backward(p.x(), p.dy(), p.a(), p.b(), p.offsets(), p.scale(), da, db, dx);
        Tensor daNoDx = p.da().clone();
        Tensor dbNoDx = p.db().clone();
        SegmentedLora.backward(p.x(), p.dy(), p.a(), p.b(), p.offsets(), p.scale(), daNoDx, dbNoDx, null);

        // The reference: each segment's matmuls in fp64; the deltas rounded to dtype, then added.
        Tensor yRef = f64(p.y()).clone();
        Tensor dxRef = f64(p.dx()).clone();
        Tensor daRef = f64(p.da()).clone();
        Tensor dbRef = f64(p.db()).clone();
        long t0 = 0;
        for (int s = 0; s < sizes.length; s++) {
            long t1 = t0 + sizes[s];
            if (t1 > t0) {
                Tensor xs = f64(p.x().narrow(0, t0, t1 - t0));
                Tensor dys = f64(p.dy().narrow(0, t0, t1 - t0));
                Tensor as = f64(p.a().select(0, s));
                Tensor bs = f64(p.b().select(0, s));
                Tensor u = torch.matmul(xs, as.t());
                Tensor g = torch.matmul(dys, bs);
                Scalar sc = new Scalar(p.scale());
                yRef.narrow(0, t0, t1 - t0).add_(f64(torch.matmul(u, bs.t()).mul(sc).to(dtype.scalarType())));
                dxRef.narrow(0, t0, t1 - t0).add_(f64(torch.matmul(g, as).mul(sc).to(dtype.scalarType())));
                daRef.select(0, s).add_(torch.matmul(g.t(), xs).mul(sc));
                dbRef.select(0, s).add_(torch.matmul(dys.t(), u).mul(sc));
            }
            t0 = t1;
        }
        check(y, yRef, bound(dtype, "y"), what + " y");
        check(dx, dxRef, bound(dtype, "dx"), what + " dx");
        check(da, daRef, bound(dtype, "da"), what + " da");
        check(db, dbRef, bound(dtype, "db"), what + " db");
        assertTrue(torch.equal(da, daNoDx) && torch.equal(db, dbNoDx), what + ": dx = null changes da or db");
    }

    private static void check(Tensor got, Tensor want, double bound, String what) {
        if (want.numel() == 0) return;
        assertCloseAtScale(got, want, torch.max(torch.abs(want)).item_double(), bound, what);
    }

    @Test
    void segmentResultsIgnoreTheRestOfTheBatch() {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            long seed = freshSeed();
            long in = 96;
            long out = 136;
            long rank = 12;
            long n = 6;
            Problem mine = problem(seed, dtype, in, out, rank, new long[] {n});
            long[][] layouts = {{3, n, 4}, {1, 0, n, 6, 2, 0}, {n, 9}};
            int[] targets = {1, 2, 0};
            Tensor[] got = new Tensor[layouts.length];
            for (int l = 0; l < layouts.length; l++) {
                Problem p = problem(seed + 100 * (l + 1), dtype, in, out, rank, layouts[l]);
                int s = targets[l];
                long t0 = Arrays.stream(layouts[l]).limit(s).sum();
                p.x().narrow(0, t0, n).copy_(mine.x());
                p.dy().narrow(0, t0, n).copy_(mine.dy());
                p.y().narrow(0, t0, n).copy_(mine.y());
                p.dx().narrow(0, t0, n).copy_(mine.dx());
                p.a().select(0, s).copy_(mine.a().select(0, 0));
                p.b().select(0, s).copy_(mine.b().select(0, 0));
                p.da().select(0, s).copy_(mine.da().select(0, 0));
                p.db().select(0, s).copy_(mine.db().select(0, 0));
                SegmentedLora.forward(p.x(), p.a(), p.b(), p.offsets(), mine.scale(), p.y());
                SegmentedLora.backward(p.x(), p.dy(), p.a(), p.b(), p.offsets(), mine.scale(), p.da(), p.db(),
                        p.dx());
                got[l] = torch.cat(new org.bytedeco.pytorch.TensorVector(
                        p.y().narrow(0, t0, n).to(torch.ScalarType.Float).flatten(),
                        p.dx().narrow(0, t0, n).to(torch.ScalarType.Float).flatten(),
                        p.da().select(0, s).flatten(), p.db().select(0, s).flatten()));
            }
            for (int l = 1; l < layouts.length; l++) {
                assertTrue(torch.equal(got[0], got[l]), dtype + " layout " + Arrays.toString(layouts[l])
                        + " changes the segment's bits; seed " + seed);
            }
        }
    }

    @Test
    void zeroRowsDoNothing() {
        Problem p = problem(1, DType.F32, 8, 4, 2, new long[] {0, 0});
        Tensor da = p.da().clone();
        SegmentedLora.forward(p.x(), p.a(), p.b(), p.offsets(), 1.0, p.y());
        SegmentedLora.backward(p.x(), p.dy(), p.a(), p.b(), p.offsets(), 1.0, da, p.db().clone(), p.dx());
        assertTrue(torch.equal(da, p.da()));
    }

    @Test
    void badInputsNameTheTensorAtFault() {
        Problem p = problem(1, DType.F32, 8, 6, 2, new long[] {1, 2});
        Tensor x = p.x();
        Tensor a = p.a();
        Tensor b = p.b();
        Tensor off = p.offsets();
        Tensor y = p.y();
        assertMessage("'x' has rank 1", "forward", () -> SegmentedLora.forward(randn(1, DType.F32, 24), a, b, off,
                1, y));
        assertMessage("'a' has shape [2, 2, 8]; expected [2, 2, 9]", "forward", () -> SegmentedLora.forward(
                randn(1, DType.F32, 3, 9), a, b, off, 1, randn(1, DType.F32, 3, 6)));
        assertMessage("'y' has shape [4, 6]; expected [3, 6]", "forward", () -> SegmentedLora.forward(x, a, b, off,
                1, randn(1, DType.F32, 4, 6)));
        assertMessage("'a' has dtype", "forward", () -> SegmentedLora.forward(x, a.to(torch.ScalarType.BFloat16), b,
                off, 1, y));
        assertMessage("'b' has shape", "forward", () -> SegmentedLora.forward(x, a, randn(1, DType.F32, 2, 6, 3),
                off, 1, y));
        assertMessage("'offsets' has dtype", "forward", () -> SegmentedLora.forward(x, a, b,
                off.to(torch.ScalarType.Int), 1, y));
        assertMessage("'offsets' has shape", "forward", () -> SegmentedLora.forward(x, a, b,
                torch.tensor(new long[] {0, 3}), 1, y));
        assertMessage("'y' has dtype", "forward", () -> SegmentedLora.forward(x, a, b, off, 1,
                y.to(torch.ScalarType.BFloat16)));
        assertMessage("'x' must be contiguous", "forward", () -> SegmentedLora.forward(randn(1, DType.F32, 8, 3).t(),
                a, b, off, 1, y));
        assertMessage("rank 65", "forward", () -> SegmentedLora.forward(x, randn(1, DType.F32, 2, 65, 8),
                randn(1, DType.F32, 2, 6, 65), off, 1, y));
        assertMessage("scale must be finite", "forward", () -> SegmentedLora.forward(x, a, b, off, Double.NaN, y));
        assertMessage("'dy' has shape", "backward", () -> SegmentedLora.backward(x, x, a, b, off, 1, p.da(), p.db(),
                null));
        assertMessage("'da' has shape", "backward", () -> SegmentedLora.backward(x, p.dy(), a, b, off, 1, p.db(),
                p.db(), null));
        assertMessage("'dx' has dtype", "backward", () -> SegmentedLora.backward(x, p.dy(), a, b, off, 1, p.da(),
                p.db(), p.dx().to(torch.ScalarType.Half)));
        // Offsets' contents are the kernel's to check (on the CPU): its message names the entry.
        NativeKernelException e = assertThrows(NativeKernelException.class, () -> SegmentedLora.forward(x, a, b,
                torch.tensor(new long[] {0, 2, 1}), 1, y));
        assertTrue(e.getMessage().contains("offsets[2] = 1"), e.getMessage());
    }

    private static void assertMessage(String part, String direction, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part) && e.getMessage().startsWith("lora_segmented_" + direction),
                e.getMessage());
    }
}
