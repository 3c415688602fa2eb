package dev.relat.ops;

import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * A linear layer for a few rows (1 to {@link #MAX_ROWS}): the projections of single-token passes
 * (decode, the latent chain, the single-token steps of its backward), which stream every weight
 * once per call. {@code forward}: y = x w^T, as {@code torch.linear(x, w)} without bias;
 * {@code backward}: dx = dy w, the input gradient of a frozen linear layer (no dw). Inputs, weight
 * and output share one dtype (fp32, bf16 or fp16); accumulation is fp32 with one rounding per
 * output. Kernels: native/src/gemv.cpp (CPU), kernels/gemv.cu (CUDA).
 */
public final class Gemv {
    /** The most rows one call takes (RELAT_GEMV_MAX_ROWS in relat.h). */
    public static final int MAX_ROWS = 8;

    private static final String FORWARD = "gemv_forward";
    private static final String BACKWARD = "gemv_backward";

    private Gemv() {}

    /**
     * Whether a {@code [rows, cols]} input has few enough rows for this op.
     *
     * @param x any defined tensor of rank 2
     * @return true when x has 1 to {@link #MAX_ROWS} rows
     */
    public static boolean fits(Tensor x) {
        return x.dim() == 2 && x.size(0) >= 1 && x.size(0) <= MAX_ROWS;
    }

    /**
     * y = x w^T.
     *
     * @param x {@code [rows, k]}, rows in 1..{@link #MAX_ROWS}, contiguous
     * @param w {@code [n, k]}, x's dtype and device, contiguous
     * @return a new {@code [rows, n]} tensor in x's dtype
     */
    public static Tensor forward(Tensor x, Tensor w) {
        Checks.defined(FORWARD, "x", x);
        Checks.defined(FORWARD, "w", w);
        Tensor y = empty(x, x.size(0), w.size(0));
        forward(x, w, y);
        return y;
    }

    /**
     * y = x w^T into a caller-owned output.
     *
     * @param x {@code [rows, k]}, rows in 1..{@link #MAX_ROWS}, contiguous
     * @param w {@code [n, k]}, x's dtype and device, contiguous
     * @param y written: {@code [rows, n]}, x's dtype and device, contiguous, not overlapping x or w
     */
    public static void forward(Tensor x, Tensor w, Tensor y) {
        long[] rnk = check(FORWARD, x, "x", w, y, "y", false);
        Kernels.launch(FORWARD, x, (library, stream) -> library.gemvForward(x.data_ptr(), w.data_ptr(),
                y.data_ptr(), rnk[0], rnk[1], rnk[2], DType.of(x.scalar_type()).tag, stream));
    }

    /**
     * dx = dy w.
     *
     * @param dy {@code [rows, n]}, rows in 1..{@link #MAX_ROWS}, contiguous
     * @param w {@code [n, k]}, dy's dtype and device, contiguous
     * @return a new {@code [rows, k]} tensor in dy's dtype
     */
    public static Tensor backward(Tensor dy, Tensor w) {
        Checks.defined(BACKWARD, "dy", dy);
        Checks.defined(BACKWARD, "w", w);
        Tensor dx = empty(dy, dy.size(0), w.size(1));
        backward(dy, w, dx);
        return dx;
    }

    /**
     * dx = dy w into a caller-owned output.
     *
     * @param dy {@code [rows, n]}, rows in 1..{@link #MAX_ROWS}, contiguous
     * @param w {@code [n, k]}, dy's dtype and device, contiguous
     * @param dx written: {@code [rows, k]}, dy's dtype and device, contiguous, not overlapping dy
     *     or w
     */
    public static void backward(Tensor dy, Tensor w, Tensor dx) {
        long[] rnk = check(BACKWARD, dy, "dy", w, dx, "dx", true);
        Kernels.launch(BACKWARD, dy, (library, stream) -> library.gemvBackward(dy.data_ptr(), w.data_ptr(),
                dx.data_ptr(), rnk[0], rnk[1], rnk[2], DType.of(dy.scalar_type()).tag, stream));
    }

    /** {rows, n, k} after checking x, w and the output; names the tensor at fault. */
    private static long[] check(String op, Tensor x, String xName, Tensor w, Tensor y, String yName,
            boolean backward) {
        DType dtype = Checks.floating(op, xName, x);
        Checks.rank(op, xName, x, 2);
        Checks.dtype(op, "w", w, dtype);
        Checks.rank(op, "w", w, 2);
        long rows = x.size(0);
        long n = w.size(0);
        long k = w.size(1);
        if (rows < 1 || rows > MAX_ROWS) {
            throw new IllegalArgumentException(op + ": tensor '" + xName + "' has " + rows + " rows; this op takes 1 to "
                    + MAX_ROWS + " (use a matrix product for more)");
        }
        if (n == 0 || k == 0) {
            throw new IllegalArgumentException(op + ": tensor 'w' is empty (" + n + " x " + k + ")");
        }
        Checks.shape(op, xName, x, rows, backward ? n : k);
        Checks.dtype(op, yName, y, dtype);
        Checks.shape(op, yName, y, rows, backward ? k : n);
        Checks.sameDevice(op, new String[] {xName, "w", yName}, x, w, y);
        return new long[] {rows, n, k};
    }

    private static Tensor empty(Tensor like, long rows, long cols) {
        TensorOptions options = new TensorOptions(like.device()).dtype(new ScalarTypeOptional(like.scalar_type()));
        return torch.empty(new long[] {rows, cols}, options, new MemoryFormatOptional());
    }
}
