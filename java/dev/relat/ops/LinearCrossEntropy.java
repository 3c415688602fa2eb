package dev.relat.ops;

import dev.relat.binding.CpuKernels;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Fused linear cross-entropy, the reconstruction loss: the mean over counted positions of
 * {@code logsumexp(h u^T) - h . u[target]} and its gradient with respect to h, in one call, without
 * materialising the [tokens, vocab] logits. Because the loss ends the graph, the gradient is formed
 * in the same sweep over the vocabulary as the loss (no recomputation, the FLOPs of the two GEMMs).
 * The count of counted positions is computed by the kernel from the targets, so nothing crosses to
 * the host; the loss stays a device scalar.
 * Kernels: native/src/linear_cross_entropy.cpp (CPU), kernels/linear_cross_entropy.cu (CUDA).
 */
public final class LinearCrossEntropy {
    private static final String OP = "linear_cross_entropy";

    /** libtorch's default ignore index. */
    public static final long IGNORE_INDEX = -100;

    private LinearCrossEntropy() {}

    /**
     * The GEMM of the CPU kernel's two tile products (the CUDA kernel always uses its own):
     * OpenBLAS's sgemm from the copy libtorch loads, or the library's built-in register-blocked
     * kernels. AUTO, the initial setting, is OpenBLAS when present, which it always is under
     * libtorch; BUILTIN is for comparisons and for hosts whose libtorch brings no OpenBLAS.
     */
    public enum CpuGemm {
        /** OpenBLAS when the process has it, else BUILTIN. */
        AUTO,
        /** librelat_cpu's own register-blocked kernels. */
        BUILTIN,
        /** The sgemm of the OpenBLAS that libtorch loads. */
        OPENBLAS
    }

    /**
     * Selects the CPU GEMM for the whole process (relat.h, relat_cpu_set_gemm); CUDA calls are not
     * affected.
     *
     * @param gemm the GEMM the next CPU calls use
     * @throws NativeKernelException for OPENBLAS when the process has no OpenBLAS
     */
    public static void useCpuGemm(CpuGemm gemm) {
        Kernels.check(CpuKernels.INSTANCE, CpuKernels.INSTANCE.setGemm(gemm.ordinal()));
    }

    /** The CPU GEMM the next call will use: BUILTIN or OPENBLAS. */
    static CpuGemm cpuGemm() {
        return CpuGemm.values()[CpuKernels.INSTANCE.gemmInUse()];
    }

    /** The loss (a 0-dim fp32 tensor on h's device) and dL/dh (shape and dtype of h). */
    public record Result(Tensor loss, Tensor dh) {}

    /**
     * Loss and gradient into new tensors, with libtorch's ignore index -100.
     *
     * @param h {@code [..., hidden]}, contiguous
     * @param u the LM head, {@code [vocab, hidden]}, h's dtype, contiguous
     * @param targets int64, one per row of h, each in [0, vocab) or -100 (not counted)
     * @return the mean loss over counted rows and dL/dh, new tensors on h's device
     */
    public static Result forwardBackward(Tensor h, Tensor u, Tensor targets) {
        return forwardBackward(h, u, targets, IGNORE_INDEX);
    }

    static Result forwardBackward(Tensor h, Tensor u, Tensor targets, long ignoreIndex) {
        Checks.defined(OP, "h", h);
        Tensor loss = h.new_empty(new long[] {}, new TensorOptions(torch.ScalarType.Float));
        Tensor dh = torch.empty_like(h);
        forwardBackward(h, u, targets, ignoreIndex, loss, dh);
        return new Result(loss, dh);
    }

    /**
     * Loss and gradient into caller-owned outputs. With no counted position the loss is NaN (as
     * libtorch's mean) and dh is zero. A target out of range makes the loss NaN. The workspace
     * comes from libtorch's allocator on h's device.
     *
     * @param h {@code [..., hidden]}, contiguous
     * @param u the LM head, {@code [vocab, hidden]}, h's dtype, contiguous
     * @param targets int64, contiguous, one per row of h, each in [0, vocab) or ignoreIndex
     * @param ignoreIndex the target value of a row that is not counted
     * @param loss written: fp32, one element, the mean loss over counted rows
     * @param dh written: dL/dh, shape and dtype of h; zero in rows that are not counted
     */
    public static void forwardBackward(Tensor h, Tensor u, Tensor targets, long ignoreIndex, Tensor loss,
            Tensor dh) {
        DType dtype = Checks.floating(OP, "h", h);
        Checks.minRank(OP, "h", h, 1);
        long hidden = h.size(-1);
        if (hidden == 0) throw new IllegalArgumentException(OP + ": tensor 'h' has an empty last dimension");
        long tokens = h.numel() / hidden;
        Checks.dtype(OP, "u", u, dtype);
        if (u.dim() != 2 || u.size(1) != hidden || u.size(0) == 0) {
            throw new IllegalArgumentException(OP + ": tensor 'u' has shape "
                    + java.util.Arrays.toString(Checks.shape(u)) + "; expected [vocab, " + hidden + "]");
        }
        long vocab = u.size(0);
        Checks.int64(OP, "targets", targets);
        if (targets.numel() != tokens) {
            throw new IllegalArgumentException(OP + ": tensor 'targets' has " + targets.numel()
                    + " elements; expected one per row of h (" + tokens + ")");
        }
        Checks.dtype(OP, "loss", loss, DType.F32);
        if (loss.numel() != 1) {
            throw new IllegalArgumentException(OP + ": tensor 'loss' has " + loss.numel()
                    + " elements; expected 1");
        }
        Checks.dtype(OP, "dh", dh, dtype);
        Checks.shape(OP, "dh", dh, Checks.shape(h));
        Checks.sameDevice(OP, new String[] {"h", "u", "targets", "loss", "dh"}, h, u, targets, loss, dh);

        long bytes = workspaceBytes(tokens, hidden, vocab, dtype, h.is_cuda());
        Tensor workspace = h.new_empty(new long[] {Math.max(bytes, 1)}, new TensorOptions(torch.ScalarType.Byte));
        Kernels.launch(OP, h, (library, stream) -> library.linearCrossEntropy(h.data_ptr(),
                u.data_ptr(), targets.data_ptr(), ignoreIndex, loss.data_ptr(), dh.data_ptr(),
                tokens, hidden, vocab, workspace.data_ptr(), bytes, dtype.tag, stream));
    }

    /**
     * Bytes of workspace the kernel needs: the fused op's whole extra memory. On the CPU it depends
     * on the GEMM in use ({@link #cpuGemm}) and the OpenMP thread count; on CUDA only on the shape.
     */
    static long workspaceBytes(long tokens, long hidden, long vocab, DType dtype, boolean cuda) {
        return Kernels.bytes(OP, cuda, (library, bytes) ->
                library.linearCrossEntropyWorkspaceBytes(tokens, hidden, vocab, dtype.tag, bytes));
    }
}
