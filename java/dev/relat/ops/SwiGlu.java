package dev.relat.ops;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * SwiGLU: out = silu(gate) * up, silu(g) = g * sigmoid(g), fp32 arithmetic, one rounding per
 * output. Two layouts: separate gate and up [..., I], or the fused projection output
 * gu [..., 2I] laid out [gate | up] along the last dimension (read as two strided views: no copy).
 * Backward: dgate = dout * up * silu'(gate), dup = dout * silu(gate) (fused: dgu = [dgate | dup]).
 * Kernels: native/src/swiglu.cpp (CPU), kernels/swiglu.cu (CUDA).
 */
public final class SwiGlu {
    private static final String OP = "swiglu_forward";
    private static final String BACKWARD = "swiglu_backward";

    private SwiGlu() {}

    /** Gradients of the two-input form. */
    record Gradients(Tensor dgate, Tensor dup) {}

    /** Returns silu(gate) * up. */
    static Tensor forward(Tensor gate, Tensor up) {
        Checks.defined(OP, "gate", gate);
        Tensor out = torch.empty_like(gate);
        forward(gate, up, out);
        return out;
    }

    /**
     * The two-input forward into a caller-owned output.
     *
     * @param gate {@code [..., I]}, contiguous
     * @param up shape and dtype of gate
     * @param out written: silu(gate) * up, shape and dtype of gate; may be gate itself
     */
    public static void forward(Tensor gate, Tensor up, Tensor out) {
        DType dtype = Checks.floating(OP, "gate", gate);
        Checks.minRank(OP, "gate", gate, 1);
        long cols = gate.size(-1);
        long rows = Kernels.rows(OP, "gate", gate, cols);
        long[] shape = Checks.shape(gate);
        Checks.dtype(OP, "up", up, dtype);
        Checks.shape(OP, "up", up, shape);
        Checks.dtype(OP, "out", out, dtype);
        Checks.shape(OP, "out", out, shape);
        Checks.sameDevice(OP, new String[] {"gate", "up", "out"}, gate, up, out);
        launchForward(gate, gate.data_ptr(), up.data_ptr(), cols, out, rows, cols, dtype);
    }

    /**
     * The forward on the fused projection output.
     *
     * @param gu {@code [..., 2I]} = [gate | up] along the last dimension, contiguous
     * @return silu(gu[..., :I]) * gu[..., I:], a new {@code [..., I]} tensor in gu's dtype
     */
    public static Tensor forwardFused(Tensor gu) {
        Checks.defined(OP, "gu", gu);
        Checks.minRank(OP, "gu", gu, 1);
        long[] shape = Checks.shape(gu);
        shape[shape.length - 1] /= 2;
        Tensor out = torch.empty(shape, new org.bytedeco.pytorch.TensorOptions(gu.device())
                .dtype(new org.bytedeco.pytorch.ScalarTypeOptional(gu.scalar_type())),
                new org.bytedeco.pytorch.MemoryFormatOptional());
        forwardFused(gu, out);
        return out;
    }

    /**
     * The fused forward into a caller-owned output.
     *
     * @param gu {@code [..., 2I]} = [gate | up] along the last dimension, contiguous
     * @param out written: {@code [..., I]}, gu's dtype
     */
    public static void forwardFused(Tensor gu, Tensor out) {
        DType dtype = Checks.floating(OP, "gu", gu);
        Checks.minRank(OP, "gu", gu, 1);
        long cols = fusedHalf(OP, gu);
        long rows = Kernels.rows(OP, "gu", gu, 2 * cols);
        Checks.dtype(OP, "out", out, dtype);
        Checks.shape(OP, "out", out, halfShape(gu));
        Checks.sameDevice(OP, new String[] {"gu", "out"}, gu, out);
        launchForward(gu, gu.data_ptr(), upHalf(gu, cols, dtype), 2 * cols, out, rows, cols, dtype);
    }

    /** Returns dgate and dup. */
    static Gradients backward(Tensor dout, Tensor gate, Tensor up) {
        Checks.defined(BACKWARD, "gate", gate);
        Tensor dgate = torch.empty_like(gate);
        Tensor dup = torch.empty_like(gate);
        backward(dout, gate, up, dgate, dup);
        return new Gradients(dgate, dup);
    }

    /**
     * The two-input backward into caller-owned outputs.
     *
     * @param dout dL/dout, shape and dtype of gate
     * @param gate the forward's gate, {@code [..., I]}, contiguous
     * @param up the forward's up, shape and dtype of gate
     * @param dgate written: shape and dtype of gate; may be gate itself
     * @param dup written: shape and dtype of gate; may be up itself
     */
    public static void backward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
        DType dtype = Checks.floating(BACKWARD, "gate", gate);
        Checks.minRank(BACKWARD, "gate", gate, 1);
        long cols = gate.size(-1);
        long rows = Kernels.rows(BACKWARD, "gate", gate, cols);
        long[] shape = Checks.shape(gate);
        Checks.dtype(BACKWARD, "dout", dout, dtype);
        Checks.shape(BACKWARD, "dout", dout, shape);
        Checks.dtype(BACKWARD, "up", up, dtype);
        Checks.shape(BACKWARD, "up", up, shape);
        Checks.dtype(BACKWARD, "dgate", dgate, dtype);
        Checks.shape(BACKWARD, "dgate", dgate, shape);
        Checks.dtype(BACKWARD, "dup", dup, dtype);
        Checks.shape(BACKWARD, "dup", dup, shape);
        Checks.sameDevice(BACKWARD, new String[] {"gate", "dout", "up", "dgate", "dup"}, gate, dout, up, dgate, dup);
        launchBackward(gate, dout, gate.data_ptr(), up.data_ptr(), cols, dgate.data_ptr(), dup.data_ptr(),
                cols, rows, cols, dtype);
    }

    /**
     * The backward of {@link #forwardFused(Tensor)}.
     *
     * @param dout dL/dout, {@code [..., I]}, gu's dtype
     * @param gu the forward's input, {@code [..., 2I]}
     * @return dgu = [dgate | dup], a new tensor with the shape and dtype of gu
     */
    public static Tensor backwardFused(Tensor dout, Tensor gu) {
        Checks.defined(BACKWARD, "gu", gu);
        Tensor dgu = torch.empty_like(gu);
        backwardFused(dout, gu, dgu);
        return dgu;
    }

    /** Writes dgu (shape and dtype of gu; may be gu itself). */
    static void backwardFused(Tensor dout, Tensor gu, Tensor dgu) {
        DType dtype = Checks.floating(BACKWARD, "gu", gu);
        Checks.minRank(BACKWARD, "gu", gu, 1);
        long cols = fusedHalf(BACKWARD, gu);
        long rows = Kernels.rows(BACKWARD, "gu", gu, 2 * cols);
        Checks.dtype(BACKWARD, "dout", dout, dtype);
        Checks.shape(BACKWARD, "dout", dout, halfShape(gu));
        Checks.dtype(BACKWARD, "dgu", dgu, dtype);
        Checks.shape(BACKWARD, "dgu", dgu, Checks.shape(gu));
        Checks.sameDevice(BACKWARD, new String[] {"gu", "dout", "dgu"}, gu, dout, dgu);
        launchBackward(gu, dout, gu.data_ptr(), upHalf(gu, cols, dtype), 2 * cols, dgu.data_ptr(),
                upHalf(dgu, cols, dtype), 2 * cols, rows, cols, dtype);
    }

    private static void launchForward(Tensor on, Pointer gate, Pointer up, long ldIn, Tensor out,
            long rows, long cols, DType dtype) {
        Kernels.launch(OP, on, (library, stream) -> library.swigluForward(gate, up, ldIn,
                out.data_ptr(), rows, cols, dtype.tag, stream));
    }

    private static void launchBackward(Tensor on, Tensor dout, Pointer gate, Pointer up, long ldIn,
            Pointer dgate, Pointer dup, long ldGrad, long rows, long cols, DType dtype) {
        Kernels.launch(BACKWARD, on, (library, stream) -> library.swigluBackward(dout.data_ptr(),
                gate, up, ldIn, dgate, dup, ldGrad, rows, cols, dtype.tag, stream));
    }

    private static long fusedHalf(String op, Tensor gu) {
        long last = gu.size(-1);
        if (last == 0 || last % 2 != 0) {
            throw new IllegalArgumentException(op + ": tensor 'gu' has last dimension " + last
                    + "; expected 2*I = [gate | up] with I > 0");
        }
        return last / 2;
    }

    private static long[] halfShape(Tensor gu) {
        long[] shape = Checks.shape(gu);
        shape[shape.length - 1] /= 2;
        return shape;
    }

    /**
     * Address of the [..., I:] half of a contiguous [..., 2I] tensor: its data pointer moved by I
     * elements (a Pointer's position is in bytes for the binding). A narrow() view would cost a
     * libtorch call, ~10 us through JavaCPP, on every decode step.
     */
    private static Pointer upHalf(Tensor gu, long cols, DType dtype) {
        return gu.data_ptr().position(cols * (dtype == DType.F32 ? 4 : 2));
    }
}
