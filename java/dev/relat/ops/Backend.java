package dev.relat.ops;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Which kernel library serves a tensor: librelat_cpu for CPU tensors, librelat_cuda for CUDA
 * tensors. Nothing here touches a CUDA class unless a tensor is on a CUDA device, so CPU-only
 * machines never load CUDA code.
 */
public final class Backend {
    private static volatile Boolean cudaReady;

    private Backend() {}

    /**
     * {@return whether CUDA tensors can go to the ops: libtorch sees a GPU, librelat_cuda loads and
     * counts at least one device} Probed once per process.
     */
    public static boolean cudaAvailable() {
        Boolean ready = cudaReady;
        if (ready == null) {
            synchronized (Backend.class) {
                ready = cudaReady;
                if (ready == null) {
                    ready = probeCuda();
                    cudaReady = ready;
                }
            }
        }
        return ready;
    }

    private static boolean probeCuda() {
        if (!torch.cuda_is_available()) return false;
        try {
            CudaKernels.load();
            return CudaKernels.INSTANCE.deviceCount() > 0;
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            return false;
        }
    }

    /**
     * A short description of the kernel library that serves a device, for logs and selftest.
     *
     * @param cuda describe librelat_cuda (only when {@link #cudaAvailable}) rather than librelat_cpu
     * @return the library, its version and, for CUDA, the architectures it was built for, e.g.
     *     {@code "librelat_cuda x.y.z (sm_80 sm_90)"}
     */
    public static String describe(boolean cuda) {
        if (cuda) {
            return "librelat_cuda " + CudaKernels.INSTANCE.version() + " ("
                    + CudaKernels.INSTANCE.architectures() + ")";
        }
        return "librelat_cpu " + CpuKernels.INSTANCE.version();
    }

    /** Fails clearly when a CUDA tensor reaches an op but the CUDA kernels are not there. */
    static void requireCuda(String op) {
        if (!cudaAvailable()) {
            throw new IllegalStateException(op + ": tensor is on CUDA but librelat_cuda is not available"
                    + " (build with nvcc present and run with the 'cuda' Maven profile)");
        }
    }

    /** The current libtorch stream on the tensor's device, or null for CPU tensors. */
    static Pointer stream(Tensor t) {
        return t.is_cuda() ? torch_cuda.getCurrentCUDAStream(t.device().index()).stream() : null;
    }
}
