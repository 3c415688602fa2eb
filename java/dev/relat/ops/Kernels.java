package dev.relat.ops;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import dev.relat.binding.KernelLibrary;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.cuda.CUDAGuard;
import org.bytedeco.pytorch.global.torch;

/**
 * The one way an op reaches a kernel: {@link #launch} picks librelat_cpu or librelat_cuda from
 * the device of a tensor, so each call site writes its argument list once. Also the workspace
 * helpers the ops share.
 */
final class Kernels {
    private Kernels() {}

    /** A kernel call on a library; {@code stream} is the device's current stream, null on the CPU. */
    @FunctionalInterface
    interface Call {
        int run(KernelLibrary library, Pointer stream);
    }

    /** A size query: writes bytes[0] (no tensor, no stream). */
    @FunctionalInterface
    interface Query {
        int run(KernelLibrary library, long[] bytes);
    }

    /**
     * Runs the call on the CUDA library when {@code on} is a CUDA tensor (on its device, for
     * libtorch and for librelat_cuda, with that device's current stream), else on the CPU library, and turns a bad status
     * into a {@link NativeKernelException} carrying the native message.
     */
    static void launch(String op, Tensor on, Call call) {
        if (on.is_cuda()) {
            KernelLibrary cuda = library(op, true);
            try (CUDAGuard guard = new CUDAGuard(on.device())) {
                // librelat_cuda links its own CUDA runtime: libtorch's current device is not its
                // current device. An op on a stream switches to the stream's device itself; this
                // covers the default stream, which carries no device.
                check(cuda, CudaKernels.INSTANCE.setDevice(on.device().index()));
                check(cuda, call.run(cuda, Backend.stream(on)));
            }
        } else {
            check(CpuKernels.INSTANCE, call.run(CpuKernels.INSTANCE, null));
        }
    }

    /** Runs a workspace-size query on the library of the CPU or of CUDA and returns the bytes. */
    static long bytes(String op, boolean cuda, Query query) {
        KernelLibrary library = library(op, cuda);
        long[] bytes = new long[1];
        check(library, query.run(library, bytes));
        return bytes[0];
    }

    /** The library serving CPU or CUDA tensors; fails clearly when the CUDA one is absent. */
    static KernelLibrary library(String op, boolean cuda) {
        if (!cuda) return CpuKernels.INSTANCE;
        Backend.requireCuda(op);
        return CudaKernels.INSTANCE;
    }

    /** Throws the library's message for its calling thread when a call returned an error status. */
    static void check(KernelLibrary library, int status) {
        if (status != 0) throw new NativeKernelException(status, library.lastError());
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

    /**
     * Checks a caller-provided workspace: contiguous, on the device of {@code like} (the op's
     * tensor called {@code likeName}), big enough.
     */
    static void checkWorkspace(String op, Tensor workspace, String likeName, Tensor like, long needed) {
        Checks.defined(op, "workspace", workspace);
        Checks.contiguous(op, "workspace", workspace);
        Checks.sameDevice(op, new String[] {likeName, "workspace"}, like, workspace);
        if (workspace.nbytes() < needed) {
            throw new IllegalArgumentException(op + ": tensor 'workspace' has " + workspace.nbytes()
                    + " bytes; " + needed + " needed");
        }
    }
}
