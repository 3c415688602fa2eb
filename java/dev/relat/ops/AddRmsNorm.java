package dev.relat.ops;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Residual add fused with the RMSNorm that follows it (the pre-norm block boundary):
 * s = x + r (rounded to the storage dtype and written out: the next residual), y = rmsnorm(s).
 * Backward: ds = rmsnorm_backward(dy; s) + dsNext, where dsNext is the gradient reaching s through
 * the residual stream; ds is the gradient of both x and r.
 * Kernels: native/src/rmsnorm.cpp (CPU), kernels/rmsnorm.cu (CUDA).
 */
public final class AddRmsNorm {
    private static final String OP = "add_rmsnorm_forward";
    private static final String BACKWARD = "add_rmsnorm_backward";

    private AddRmsNorm() {}

    /** Forward outputs: the residual sum s, the normalised y, the fp32 rstd per row. */
    record Result(Tensor s, Tensor y, Tensor rstd) {}

    /** Returns new s, y (shape and dtype of x) and rstd (fp32, one per row). */
    static Result forward(Tensor x, Tensor r, Tensor weight, double eps) {
        Checks.defined(OP, "x", x);
        Checks.minRank(OP, "x", x, 1);
        Tensor s = torch.empty_like(x);
        Tensor y = torch.empty_like(x);
        long rows = Kernels.rows(OP, "x", x, x.size(-1));
        Tensor rstd = torch.empty(new long[] {rows}, new TensorOptions(x.device())
                .dtype(new ScalarTypeOptional(torch.ScalarType.Float)), new MemoryFormatOptional());
        forward(x, r, weight, eps, s, y, rstd);
        return new Result(s, y, rstd);
    }

    /**
     * The forward into caller-owned outputs.
     *
     * @param x {@code [..., cols]}, contiguous: the residual stream
     * @param r the block output added to it: shape and dtype of x
     * @param weight {@code [cols]}, dtype of x
     * @param eps added to mean(s^2), &gt;= 0 (used as fp32)
     * @param s written: x + r rounded to the dtype; may be x or r itself (the in-place residual
     *     update)
     * @param y written: rmsnorm(s), shape and dtype of x; may be x or r, not s
     * @param rstd written when not null: fp32, one element per row, saved for the backward
     */
    public static void forward(Tensor x, Tensor r, Tensor weight, double eps, Tensor s, Tensor y,
            Tensor rstd) {
        DType dtype = Checks.floating(OP, "x", x);
        Checks.minRank(OP, "x", x, 1);
        long cols = x.size(-1);
        long rows = Kernels.rows(OP, "x", x, cols);
        long[] shape = Checks.shape(x);
        Checks.dtype(OP, "r", r, dtype);
        Checks.shape(OP, "r", r, shape);
        Checks.dtype(OP, "s", s, dtype);
        Checks.shape(OP, "s", s, shape);
        Checks.dtype(OP, "weight", weight, dtype);
        Checks.shape(OP, "weight", weight, cols);
        Checks.dtype(OP, "y", y, dtype);
        Checks.shape(OP, "y", y, shape);
        RmsNorm.checkRstd(OP, rstd, rows);
        Checks.sameDevice(OP, new String[] {"x", "r", "s", "weight", "y", "rstd"}, x, r, s, weight, y, rstd);
        if (!(eps >= 0)) throw new IllegalArgumentException(OP + ": eps must be >= 0, got " + eps);
        if (rows > 0 && y.data_ptr().address() == s.data_ptr().address()) {
            throw new IllegalArgumentException(OP + ": tensor 'y' must not share storage with 's'");
        }
        Pointer rstdPtr = rstd == null ? null : rstd.data_ptr();
        Kernels.launch(OP, x, (library, stream) -> library.addRmsnormForward(x.data_ptr(),
                r.data_ptr(), s.data_ptr(), weight.data_ptr(), y.data_ptr(), rstdPtr, rows, cols,
                (float) eps, dtype.tag, stream));
    }

    /** Returns ds = rmsnorm_backward(dy; s, weight, rstd) + dsNext (the gradient of x and of r). */
    static Tensor backward(Tensor dy, Tensor dsNext, Tensor s, Tensor weight, Tensor rstd) {
        Checks.defined(BACKWARD, "s", s);
        Tensor ds = torch.empty_like(s);
        backward(dy, dsNext, s, weight, rstd, ds, null, null);
        return ds;
    }

    /**
     * The backward into caller-owned outputs.
     *
     * @param dy dL/dy, shape and dtype of s
     * @param dsNext the gradient reaching s through the residual stream, shape and dtype of s
     * @param s the forward's s
     * @param weight the forward's weight, {@code [cols]}
     * @param rstd the forward's rstd (fp32, one per row)
     * @param ds written: the gradient of both x and r, shape and dtype of s; may be dy or dsNext
     *     itself, so the residual gradient is accumulated in place
     * @param dweight null, or written: fp32 {@code [cols]}, summed over the rows
     * @param workspace used only with dweight, as for
     *     {@link RmsNorm#backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)} (same
     *     size query, {@link RmsNorm#backwardWorkspaceBytes})
     */
    public static void backward(Tensor dy, Tensor dsNext, Tensor s, Tensor weight, Tensor rstd,
            Tensor ds, Tensor dweight, Tensor workspace) {
        Checks.defined(BACKWARD, "s", s);
        Checks.minRank(BACKWARD, "s", s, 1);
        Checks.defined(BACKWARD, "ds_next", dsNext);
        RmsNorm.normBackward(BACKWARD, dy, dsNext, s, weight, rstd, ds, dweight, workspace, s.size(-1));
    }
}
