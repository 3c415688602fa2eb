package dev.relat.ops;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import java.util.function.IntSupplier;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.cuda.CUDAGuard;
import org.bytedeco.pytorch.global.torch;

/** Shared plumbing of the ops: run the kernel of the right library, workspace buffers. */
final class Kernels {
    private Kernels() {}

    /**
     * Runs the CUDA kernel when {@code on} is a CUDA tensor (under a guard for its device), else
     * the CPU kernel, and turns a bad status into a {@link NativeKernelException}.
     */
    static void launch(String op, Tensor on, IntSupplier cpu, IntSupplier cuda) {
        if (on.is_cuda()) {
            Backend.requireCuda(op);
            try (CUDAGuard guard = new CUDAGuard(on.device())) {
                Backend.check(cuda.getAsInt(), true);
            }
        } else {
            Backend.check(cpu.getAsInt(), false);
        }
    }

    /** Rows of a [..., cols] tensor, failing on an empty last dimension. */
    static long rows(String op, String name, Tensor t, long cols) {
        if (cols == 0) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has an empty last dimension");
        }
        return t.numel() / cols;
    }

    /** A byte buffer of at least {@code bytes} on the device of {@code like}. */
    static Tensor workspace(Tensor like, long bytes) {
        TensorOptions options = new TensorOptions(like.device())
                .dtype(new ScalarTypeOptional(torch.ScalarType.Byte));
        return torch.empty(new long[] {Math.max(bytes, 1)}, options, new MemoryFormatOptional());
    }

    /** Checks a caller-provided workspace: contiguous, on the device of {@code like}, big enough. */
    static void checkWorkspace(String op, Tensor workspace, Tensor like, long needed) {
        Checks.defined(op, "workspace", workspace);
        Checks.contiguous(op, "workspace", workspace);
        Checks.sameDevice(op, new String[] {"dy", "workspace"}, like, workspace);
        if (workspace.nbytes() < needed) {
            throw new IllegalArgumentException(op + ": tensor 'workspace' has " + workspace.nbytes()
                    + " bytes; " + needed + " needed");
        }
    }

    static long rmsnormWorkspaceBytes(long rows, long cols, boolean cuda) {
        long[] bytes = new long[1];
        if (cuda) {
            Backend.requireCuda("rmsnorm_backward_workspace_bytes");
            Backend.check(CudaKernels.rmsnormBackwardWorkspaceSize(rows, cols, bytes), true);
        } else {
            Backend.check(CpuKernels.rmsnormBackwardWorkspaceSize(rows, cols, bytes), false);
        }
        return bytes[0];
    }
}
