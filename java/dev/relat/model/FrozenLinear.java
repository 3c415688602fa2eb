package dev.relat.model;

import dev.relat.ops.Gemv;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The model's projections (no bias, frozen weight [out, in]): forward x w^T and the input gradient
 * dy w. Single-token passes (decode, a latent step, a step of the backward through the latent
 * chain: 1 to {@link Gemv#MAX_ROWS} rows) stream the weight once through relat's few-row kernel on
 * every core; more rows go to libtorch's GEMM. {@code -Drelat.fewRowKernel=false} sends every
 * call to libtorch (for A/B measurements).
 */
public final class FrozenLinear {
    private FrozenLinear() {}

    /**
     * @param x {@code [rows, in]}
     * @param w {@code [out, in]}, x's dtype and device
     * @return x w^T, a new {@code [rows, out]} tensor in the caller's PointerScope
     */
    public static Tensor forward(Tensor x, Tensor w) {
        return fewRows(x) && suits(x, w) ? Gemv.forward(x, w) : torch.linear(x, w);
    }

    /**
     * @param x {@code [rows, in]}
     * @param w {@code [out, in]}, x's dtype and device
     * @param y written: x w^T, {@code [rows, out]}, contiguous
     */
    public static void forward(Tensor x, Tensor w, Tensor y) {
        if (fewRows(x) && suits(x, w)) {
            Gemv.forward(x, w, y);
        } else {
            torch.mm_out(y, x, w.t());
        }
    }

    /**
     * @param dy {@code [rows, out]}
     * @param w {@code [out, in]}, dy's dtype and device
     * @return dy w, a new {@code [rows, in]} tensor in the caller's PointerScope
     */
    public static Tensor inputGradient(Tensor dy, Tensor w) {
        return fewRows(dy) && suits(dy, w) ? Gemv.backward(dy, w) : torch.matmul(dy, w);
    }

    /** Whether x takes the few-row kernel (1 to {@link Gemv#MAX_ROWS} rows, kernel enabled). */
    static boolean fewRows(Tensor x) {
        return CpuSettings.FEW_ROW_KERNEL && Gemv.fits(x);
    }

    private static boolean suits(Tensor x, Tensor w) {
        return x.is_contiguous() && w.is_contiguous() && x.scalar_type().value == w.scalar_type().value;
    }
}
