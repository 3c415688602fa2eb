package dev.relat.ops;

import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Qwen3 QK-norm: RMSNorm of every head row of q or k. x is [T, H, D] or [T, H*D] (any leading
 * shape, contiguous), weight is [D]; each of the T*H rows of D elements is normalised.
 *
 * <p>Why this reuses the RMSNorm kernels (rows = T*H, cols = D) instead of its own: a head row is
 * exactly an RMSNorm row, and the RMSNorm launcher already serves short rows the way a dedicated
 * kernel would. On CUDA, cols &lt;= 1024 selects one warp per row (4 rows per block), and the vector
 * width is chosen so that D = 128 gives every lane one 8-byte (bf16) or 16-byte (fp32) access per
 * pass, with warp shuffles only (no block barrier); dweight partials are kept per warp in shared
 * memory. On the CPU a row of D is the same vectorised loop and rows are spread over threads.
 * The only thing a dedicated kernel could add is fusing RoPE, which is a different op.
 * Kernels: native/src/rmsnorm.cpp (CPU), kernels/rmsnorm.cu (CUDA).
 */
public final class QkNorm {
    private static final String OP = "qk_norm_forward";
    private static final String BACKWARD = "qk_norm_backward";

    private QkNorm() {}

    /** Returns y (shape and dtype of x); head dimension D = weight.size(0). */
    static Tensor forward(Tensor x, Tensor weight, double eps) {
        Checks.defined(OP, "x", x);
        Tensor y = torch.empty_like(x);
        forward(x, weight, eps, y, null);
        return y;
    }

    /** Returns y and writes the fp32 rstd of every head row into a new tensor of shape [T*H]. */
    static Result forwardWithRstd(Tensor x, Tensor weight, double eps) {
        Checks.defined(OP, "x", x);
        Tensor y = torch.empty_like(x);
        long d = headDim(OP, x, weight);
        Tensor rstd = torch.empty(new long[] {x.numel() / d}, new TensorOptions(x.device())
                .dtype(new ScalarTypeOptional(torch.ScalarType.Float)), new MemoryFormatOptional());
        forward(x, weight, eps, y, rstd);
        return new Result(y, rstd);
    }

    /** The forward's outputs. */
    record Result(Tensor y, Tensor rstd) {}

    /**
     * The forward into caller-owned outputs.
     *
     * @param x q or k, {@code [T, H, D]} or {@code [T, H*D]}, contiguous
     * @param weight {@code [D]}, dtype of x
     * @param eps added to mean(x^2) of each head row, &gt;= 0 (used as fp32)
     * @param y written: shape and dtype of x; may be x itself
     * @param rstd written when not null: fp32, T*H elements, saved for the backward
     */
    public static void forward(Tensor x, Tensor weight, double eps, Tensor y, Tensor rstd) {
        long d = headDim(OP, x, weight);
        RmsNorm.normForward(OP, x, weight, eps, y, rstd, d);
    }

    /**
     * The input gradient alone (the weight is frozen).
     *
     * @param dy dL/dy, shape and dtype of x
     * @param x the forward's input, contiguous
     * @param weight the forward's weight, {@code [D]}
     * @param rstd the forward's rstd (fp32, T*H elements)
     * @return dx, a new tensor with the shape and dtype of x
     */
    public static Tensor backward(Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
        Checks.defined(BACKWARD, "x", x);
        Tensor dx = torch.empty_like(x);
        backward(dy, x, weight, rstd, dx, null, null);
        return dx;
    }

    /**
     * The backward into caller-owned outputs.
     *
     * @param dy dL/dy, shape and dtype of x
     * @param x the forward's input, contiguous
     * @param weight the forward's weight, {@code [D]}
     * @param rstd the forward's rstd (fp32, T*H elements)
     * @param dx written: shape and dtype of x; may be dy itself
     * @param dweight null, or written: fp32 {@code [D]}, summed over all T*H rows
     * @param workspace used only with dweight: as for RmsNorm, sized by
     *     {@link RmsNorm#backwardWorkspaceBytes} with rows = T*H and cols = D; or null
     */
    public static void backward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx,
            Tensor dweight, Tensor workspace) {
        long d = headDim(BACKWARD, x, weight);
        RmsNorm.normBackward(BACKWARD, dy, null, x, weight, rstd, dx, dweight, workspace, d);
    }

    private static long headDim(String op, Tensor x, Tensor weight) {
        Checks.defined(op, "x", x);
        Checks.minRank(op, "x", x, 1);
        Checks.defined(op, "weight", weight);
        if (weight.dim() != 1 || weight.size(0) == 0) {
            throw new IllegalArgumentException(op + ": tensor 'weight' has shape "
                    + java.util.Arrays.toString(Checks.shape(weight)) + "; expected [D], D > 0");
        }
        long d = weight.size(0);
        if (x.size(-1) % d != 0) {
            throw new IllegalArgumentException(op + ": tensor 'x' has last dimension " + x.size(-1)
                    + ", not a multiple of the head dimension " + d + " (weight [D])");
        }
        return d;
    }
}
