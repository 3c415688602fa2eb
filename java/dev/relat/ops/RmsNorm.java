package dev.relat.ops;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.cuda.CUDAGuard;
import org.bytedeco.pytorch.global.torch;

/**
 * RMSNorm over the last dimension: y = x / sqrt(mean(x^2) + eps) * weight, fp32 accumulation.
 * Kernels: native/src/rmsnorm.cpp (CPU), kernels/rmsnorm.cu (CUDA).
 */
public final class RmsNorm {
    private static final String OP = "rmsnorm_forward";

    private RmsNorm() {}

    /** Returns a new tensor y with the shape and dtype of x. */
    public static Tensor forward(Tensor x, Tensor weight, double eps) {
        Checks.defined(OP, "x", x);
        Tensor y = torch.empty_like(x);
        forward(x, weight, eps, y, null);
        return y;
    }

    /**
     * Writes y (same shape and dtype as x; may be x itself) and, when rstd is not null, the fp32
     * reciprocal RMS of every row into rstd (numel = rows). Only device pointers are passed.
     */
    public static void forward(Tensor x, Tensor weight, double eps, Tensor y, Tensor rstd) {
        DType dtype = Checks.floating(OP, "x", x);
        Checks.minRank(OP, "x", x, 1);
        long cols = x.size(-1);
        if (cols == 0) throw new IllegalArgumentException(OP + ": tensor 'x' has an empty last dimension");
        long rows = x.numel() / cols;
        Checks.dtype(OP, "weight", weight, dtype);
        Checks.shape(OP, "weight", weight, cols);
        Checks.dtype(OP, "y", y, dtype);
        Checks.shape(OP, "y", y, Checks.shape(x));
        if (rstd != null) {
            Checks.dtype(OP, "rstd", rstd, DType.F32);
            if (rstd.numel() != rows) {
                throw new IllegalArgumentException(OP + ": tensor 'rstd' has " + rstd.numel()
                        + " elements; expected one per row (" + rows + ")");
            }
        }
        Checks.sameDevice(OP, new String[] {"x", "weight", "y", "rstd"}, x, weight, y, rstd);
        if (!(eps >= 0)) throw new IllegalArgumentException(OP + ": eps must be >= 0, got " + eps);

        if (x.is_cuda()) {
            Backend.requireCuda(OP);
            try (CUDAGuard guard = new CUDAGuard(x.device())) {
                Backend.check(CudaKernels.rmsnormForward(x.data_ptr(), weight.data_ptr(), y.data_ptr(),
                        rstd == null ? null : rstd.data_ptr(), rows, cols, (float) eps, dtype.tag,
                        Backend.stream(x)), true);
            }
        } else {
            Backend.check(CpuKernels.rmsnormForward(x.data_ptr(), weight.data_ptr(), y.data_ptr(),
                    rstd == null ? null : rstd.data_ptr(), rows, cols, (float) eps, dtype.tag, null),
                    false);
        }
    }
}
