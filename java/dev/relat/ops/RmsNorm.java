package dev.relat.ops;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * RMSNorm over the last dimension: y = x / sqrt(mean(x^2) + eps) * weight, fp32 accumulation,
 * and its backward from the fp32 rstd saved by the forward.
 * Kernels: native/src/rmsnorm.cpp (CPU), kernels/rmsnorm.cu (CUDA).
 */
public final class RmsNorm {
    private static final String OP = "rmsnorm_forward";
    private static final String BACKWARD = "rmsnorm_backward";

    private RmsNorm() {}

    /** Gradients of the backward: dx in the dtype of x; dweight fp32 [cols], or null if not asked. */
    record Gradients(Tensor dx, Tensor dweight) {}

    /**
     * The forward for inference: no rstd is kept.
     *
     * @param x {@code [..., cols]}, contiguous
     * @param weight {@code [cols]}, dtype of x
     * @param eps added to mean(x^2), &gt;= 0 (used as fp32)
     * @return y, a new tensor with the shape and dtype of x
     */
    public static Tensor forward(Tensor x, Tensor weight, double eps) {
        Checks.defined(OP, "x", x);
        Tensor y = torch.empty_like(x);
        forward(x, weight, eps, y, null);
        return y;
    }

    /**
     * The forward into caller-owned outputs.
     *
     * @param x {@code [..., cols]}, contiguous
     * @param weight {@code [cols]}, dtype of x
     * @param eps added to mean(x^2), &gt;= 0 (used as fp32)
     * @param y written: shape and dtype of x; may be x itself
     * @param rstd written when not null: fp32, one element per row, 1/sqrt(mean(x^2) + eps), what
     *     the backward needs
     */
    public static void forward(Tensor x, Tensor weight, double eps, Tensor y, Tensor rstd) {
        Checks.defined(OP, "x", x);
        Checks.minRank(OP, "x", x, 1);
        normForward(OP, x, weight, eps, y, rstd, x.size(-1));
    }

    /**
     * The input gradient alone (the weight is frozen).
     *
     * @param dy dL/dy, shape and dtype of x
     * @param x the forward's input
     * @param weight the forward's weight
     * @param rstd the forward's rstd (fp32, one per row)
     * @return dx, a new tensor with the shape and dtype of x
     */
    public static Tensor backward(Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
        Checks.defined(BACKWARD, "x", x);
        Tensor dx = torch.empty_like(x);
        backward(dy, x, weight, rstd, dx, null, null);
        return dx;
    }

    /** dx and dweight (fp32, reduced over rows); the workspace is allocated here. */
    static Gradients backwardWithWeight(Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
        Checks.defined(BACKWARD, "x", x);
        Checks.minRank(BACKWARD, "x", x, 1);
        Tensor dx = torch.empty_like(x);
        Tensor dweight = torch.empty(new long[] {x.size(-1)}, new TensorOptions(x.device())
                .dtype(new org.bytedeco.pytorch.ScalarTypeOptional(torch.ScalarType.Float)),
                new org.bytedeco.pytorch.MemoryFormatOptional());
        backward(dy, x, weight, rstd, dx, dweight, null);
        return new Gradients(dx, dweight);
    }

    /**
     * The backward into caller-owned outputs, with the weight gradient when asked for.
     *
     * @param dy dL/dy, shape and dtype of x
     * @param x the forward's input, {@code [..., cols]}
     * @param weight the forward's weight, {@code [cols]}
     * @param rstd the forward's rstd (fp32, one per row)
     * @param dx written: shape and dtype of x; may be dy itself
     * @param dweight null, or written: fp32 {@code [cols]}, summed over the rows (overwritten, not
     *     accumulated)
     * @param workspace used only with dweight: a contiguous tensor of at least
     *     {@link #backwardWorkspaceBytes} bytes on x's device, kept across calls, or null to
     *     allocate one for this call
     */
    public static void backward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx,
            Tensor dweight, Tensor workspace) {
        Checks.defined(BACKWARD, "x", x);
        Checks.minRank(BACKWARD, "x", x, 1);
        normBackward(BACKWARD, dy, null, x, weight, rstd, dx, dweight, workspace, x.size(-1));
    }

    /**
     * The workspace of a backward that computes dweight (the partial sums of its reduction).
     *
     * @param rows rows of x: its element count / cols
     * @param cols the normalised (last) dimension
     * @param cuda size it for librelat_cuda rather than librelat_cpu
     * @return bytes
     */
    public static long backwardWorkspaceBytes(long rows, long cols, boolean cuda) {
        return Kernels.bytes("rmsnorm_backward_workspace_bytes", cuda,
                (library, bytes) -> library.rmsnormBackwardWorkspaceBytes(rows, cols, bytes));
    }

    // ---- shared with QkNorm and AddRmsNorm ---------------------------------------------------

    /** RMSNorm over groups of {@code cols} elements of a contiguous x (x.size(-1) % cols == 0). */
    static void normForward(String op, Tensor x, Tensor weight, double eps, Tensor y, Tensor rstd,
            long cols) {
        DType dtype = Checks.floating(op, "x", x);
        long rows = Kernels.rows(op, "x", x, cols);
        Checks.dtype(op, "weight", weight, dtype);
        Checks.shape(op, "weight", weight, cols);
        Checks.dtype(op, "y", y, dtype);
        Checks.shape(op, "y", y, Checks.shape(x));
        checkRstd(op, rstd, rows);
        Checks.sameDevice(op, new String[] {"x", "weight", "y", "rstd"}, x, weight, y, rstd);
        if (!(eps >= 0)) throw new IllegalArgumentException(op + ": eps must be >= 0, got " + eps);
        Pointer rstdPtr = rstd == null ? null : rstd.data_ptr();
        Kernels.launch(op, x, (library, stream) -> library.rmsnormForward(x.data_ptr(),
                weight.data_ptr(), y.data_ptr(), rstdPtr, rows, cols, (float) eps, dtype.tag, stream));
    }

    /**
     * The backward over groups of {@code cols} elements; with dsNext != null the residual form
     * (x is then s, dx is ds).
     */
    static void normBackward(String op, Tensor dy, Tensor dsNext, Tensor x, Tensor weight,
            Tensor rstd, Tensor dx, Tensor dweight, Tensor workspace, long cols) {
        boolean residual = dsNext != null;
        String xName = residual ? "s" : "x";
        String dxName = residual ? "ds" : "dx";
        DType dtype = Checks.floating(op, xName, x);
        long rows = Kernels.rows(op, xName, x, cols);
        long[] shape = Checks.shape(x);
        Checks.dtype(op, "dy", dy, dtype);
        Checks.shape(op, "dy", dy, shape);
        if (residual) {
            Checks.dtype(op, "ds_next", dsNext, dtype);
            Checks.shape(op, "ds_next", dsNext, shape);
        }
        Checks.dtype(op, "weight", weight, dtype);
        Checks.shape(op, "weight", weight, cols);
        Checks.defined(op, "rstd", rstd);
        checkRstd(op, rstd, rows);
        Checks.dtype(op, dxName, dx, dtype);
        Checks.shape(op, dxName, dx, shape);
        if (dweight != null) {
            Checks.dtype(op, "dweight", dweight, DType.F32);
            Checks.shape(op, "dweight", dweight, cols);
        }
        Checks.sameDevice(op, new String[] {xName, "dy", "ds_next", "weight", "rstd", dxName, "dweight"},
                x, dy, dsNext, weight, rstd, dx, dweight);
        long needed = 0;
        if (dweight != null) {
            needed = backwardWorkspaceBytes(rows, cols, x.is_cuda());
            if (workspace == null) workspace = Kernels.workspace(x, needed);
            Kernels.checkWorkspace(op, workspace, xName, x, needed);
        }
        Pointer dw = dweight == null ? null : dweight.data_ptr();
        Pointer ws = dweight == null ? null : workspace.data_ptr();
        long wsBytes = dweight == null ? 0 : workspace.nbytes();
        if (residual) {
            Kernels.launch(op, x, (library, stream) -> library.addRmsnormBackward(dy.data_ptr(),
                    dsNext.data_ptr(), x.data_ptr(), weight.data_ptr(), rstd.data_ptr(), dx.data_ptr(),
                    dw, ws, wsBytes, rows, cols, dtype.tag, stream));
        } else {
            Kernels.launch(op, x, (library, stream) -> library.rmsnormBackward(dy.data_ptr(),
                    x.data_ptr(), weight.data_ptr(), rstd.data_ptr(), dx.data_ptr(), dw, ws, wsBytes,
                    rows, cols, dtype.tag, stream));
        }
    }

    static void checkRstd(String op, Tensor rstd, long rows) {
        if (rstd == null) return;
        Checks.dtype(op, "rstd", rstd, DType.F32);
        if (rstd.numel() != rows) {
            throw new IllegalArgumentException(op + ": tensor 'rstd' has " + rstd.numel()
                    + " elements; expected one per row (" + rows + ")");
        }
    }
}
