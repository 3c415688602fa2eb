package dev.relat.ops;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Rotary position embedding on q and k, Qwen / Hugging Face rotate-half convention, in one kernel
 * call for both. For token t, head h, pair i &lt; D/2: angle = positions[t] * invFreq[i] (fp32),
 * out[i] = x[i]*cos - x[i+D/2]*sin, out[i+D/2] = x[i+D/2]*cos + x[i]*sin. The backward applies the
 * inverse rotation (sin negated) to the output gradients.
 *
 * <p>Layouts: q [tokens, qHeads, headDim], k [tokens, kvHeads, headDim] (grouped-query head counts
 * may differ; headDim even, at most 1024); the head and headDim dimensions must be contiguous,
 * the token stride may be larger (e.g. q and k as views into a fused qkv projection). Outputs
 * must have the inputs' shape and strides; they may be the inputs themselves (in place).
 * positions: int64 [tokens], any values. invFreq: fp32 [headDim/2], from {@link #invFreq}. Math
 * is fp32 with fp32 cos/sin and one rounding at the store (Hugging Face rounds cos/sin and each
 * product to bf16 when the activations are bf16; relat is the more accurate of the two).
 *
 * <p>Kernels: native/src/rope.cpp (CPU), kernels/rope.cu (CUDA).
 */
public final class Rope {
    private static final String FORWARD = "rope_forward";
    private static final String BACKWARD = "rope_backward";

    private Rope() {}

    /**
     * inv_freq[i] = 1 / theta^(2i/D) in fp32, computed with the same libtorch ops and dtypes as
     * transformers' default RoPE initialisation: compute it once per model.
     *
     * @param theta the model's rope_theta, &gt; 0
     * @param headDim D, even and &gt;= 2
     * @param device where the result lives: the device of the q and k it will rotate
     * @return fp32 {@code [D/2]}
     */
    public static Tensor invFreq(double theta, long headDim, Device device) {
        if (headDim < 2 || headDim % 2 != 0) {
            throw new IllegalArgumentException("rope: headDim must be even and >= 2, got " + headDim);
        }
        if (!(theta > 0)) throw new IllegalArgumentException("rope: theta must be > 0, got " + theta);
        Tensor exponent = torch.arange(new Scalar(0), new Scalar(headDim), new Scalar(2),
                new TensorOptions(torch.ScalarType.Long)).to(device, torch.ScalarType.Float)
                .div(new Scalar(headDim));
        return torch.pow(new Scalar(theta), exponent).reciprocal();
    }

    /**
     * The forward into new tensors.
     *
     * @param q {@code [tokens, qHeads, headDim]}, contiguous
     * @param k {@code [tokens, kvHeads, headDim]}, contiguous, dtype of q; or null to rotate q alone
     * @param positions int64 {@code [tokens]}
     * @param invFreq fp32 {@code [headDim/2]}, from {@link #invFreq}
     * @return {q', k'}: new tensors with the shapes and dtype of q and k (k' null when k is)
     */
    public static Tensor[] forward(Tensor q, Tensor k, Tensor positions, Tensor invFreq) {
        Checks.defined(FORWARD, "q", q);
        Checks.contiguous(FORWARD, "q", q);
        if (k != null) Checks.contiguous(FORWARD, "k", k);
        Tensor qOut = torch.empty_like(q);
        Tensor kOut = k == null ? null : torch.empty_like(k);
        forward(q, k, positions, invFreq, qOut, kOut);
        return new Tensor[] {qOut, kOut};
    }

    /**
     * The forward into caller-owned outputs.
     *
     * @param q {@code [tokens, qHeads, headDim]}, heads and headDim contiguous
     * @param k {@code [tokens, kvHeads, headDim]} likewise, dtype of q; or null (then kOut is null)
     * @param positions int64 {@code [tokens]}
     * @param invFreq fp32 {@code [headDim/2]}, from {@link #invFreq}
     * @param qOut written: the shape and strides of q; may be q itself
     * @param kOut written: the shape and strides of k; may be k itself
     */
    public static void forward(Tensor q, Tensor k, Tensor positions, Tensor invFreq, Tensor qOut, Tensor kOut) {
        run(FORWARD, q, k, positions, invFreq, qOut, kOut);
    }

    /** In place: q and k (k may be null) are overwritten with their rotation. */
    static void forwardInPlace(Tensor q, Tensor k, Tensor positions, Tensor invFreq) {
        run(FORWARD, q, k, positions, invFreq, q, k);
    }

    /** Returns new tensors {dq, dk}, the gradients of forward's inputs; inputs contiguous. */
    static Tensor[] backward(Tensor dqOut, Tensor dkOut, Tensor positions, Tensor invFreq) {
        Checks.defined(BACKWARD, "dqOut", dqOut);
        Checks.contiguous(BACKWARD, "dqOut", dqOut);
        if (dkOut != null) Checks.contiguous(BACKWARD, "dkOut", dkOut);
        Tensor dq = torch.empty_like(dqOut);
        Tensor dk = dkOut == null ? null : torch.empty_like(dkOut);
        backward(dqOut, dkOut, positions, invFreq, dq, dk);
        return new Tensor[] {dq, dk};
    }

    /**
     * The backward into caller-owned outputs: the inverse rotation of the output gradients.
     *
     * @param dqOut dL/dq', {@code [tokens, qHeads, headDim]}, heads and headDim contiguous
     * @param dkOut dL/dk' likewise, dtype of dqOut; or null (then dk is null)
     * @param positions the forward's positions, int64 {@code [tokens]}
     * @param invFreq the forward's inverse frequencies, fp32 {@code [headDim/2]}
     * @param dq written: dL/dq, the shape and strides of dqOut; may be dqOut itself
     * @param dk written: dL/dk, the shape and strides of dkOut; may be dkOut itself
     */
    public static void backward(Tensor dqOut, Tensor dkOut, Tensor positions, Tensor invFreq, Tensor dq, Tensor dk) {
        run(BACKWARD, dqOut, dkOut, positions, invFreq, dq, dk);
    }

    /**
     * The backward in place.
     *
     * @param dq dL/dq' on entry, dL/dq on return; {@code [tokens, qHeads, headDim]}, heads and
     *     headDim contiguous
     * @param dk likewise for k, or null
     * @param positions the forward's positions, int64 {@code [tokens]}
     * @param invFreq the forward's inverse frequencies, fp32 {@code [headDim/2]}
     */
    public static void backwardInPlace(Tensor dq, Tensor dk, Tensor positions, Tensor invFreq) {
        run(BACKWARD, dq, dk, positions, invFreq, dq, dk);
    }

    private static void run(String op, Tensor q, Tensor k, Tensor positions, Tensor invFreq, Tensor qOut,
            Tensor kOut) {
        boolean fwd = op.equals(FORWARD);
        String qName = fwd ? "q" : "dqOut", kName = fwd ? "k" : "dkOut";
        String qOutName = fwd ? "qOut" : "dq", kOutName = fwd ? "kOut" : "dk";
        Checks.defined(op, qName, q);
        DType dtype = DType.of(q.scalar_type());
        if (dtype == null) {
            throw new IllegalArgumentException(op + ": tensor '" + qName + "' has dtype " + q.scalar_type()
                    + "; expected Float, BFloat16 or Half");
        }
        if (q.dim() != 3) {
            throw new IllegalArgumentException(op + ": tensor '" + qName + "' has rank " + q.dim()
                    + "; expected 3 ([tokens, heads, headDim])");
        }
        long tokens = q.size(0), qHeads = q.size(1), headDim = q.size(2);
        if (headDim % 2 != 0 || headDim < 2 || headDim > 1024) {
            throw new IllegalArgumentException(op + ": head dimension " + headDim + " of '" + qName
                    + "' must be even and in [2, 1024]");
        }
        long ldq = headStrided(op, qName, q);
        sameLayout(op, qOutName, qOut, qName, q, dtype);
        long kvHeads = 0, ldk = 0;
        if (k != null || kOut != null) {
            if (k == null || kOut == null) {
                throw new IllegalArgumentException(op + ": tensors '" + kName + "' and '" + kOutName
                        + "' must both be given or both be null");
            }
            Checks.defined(op, kName, k);
            if (DType.of(k.scalar_type()) != dtype) {
                throw new IllegalArgumentException(op + ": tensor '" + kName + "' has dtype " + k.scalar_type()
                        + "; expected " + dtype.scalarType() + " like '" + qName + "'");
            }
            if (k.dim() != 3 || k.size(0) != tokens || k.size(2) != headDim) {
                throw new IllegalArgumentException(op + ": tensor '" + kName + "' has shape "
                        + java.util.Arrays.toString(Checks.shape(k)) + "; expected [" + tokens + ", kvHeads, "
                        + headDim + "]");
            }
            kvHeads = k.size(1);
            ldk = headStrided(op, kName, k);
            sameLayout(op, kOutName, kOut, kName, k, dtype);
        }
        Checks.int64(op, "positions", positions);
        Checks.shape(op, "positions", positions, tokens);
        Checks.dtype(op, "invFreq", invFreq, DType.F32);
        Checks.shape(op, "invFreq", invFreq, headDim / 2);
        Checks.sameDevice(op, new String[] {qName, qOutName, kName, kOutName, "positions", "invFreq"}, q, qOut, k,
                kOut, positions, invFreq);

        long kvHeadCount = kvHeads, kStride = ldk;
        Pointer kPtr = k == null ? null : k.data_ptr(), kOutPtr = kOut == null ? null : kOut.data_ptr();
        Kernels.launch(op, q, (library, stream) -> fwd
                ? library.ropeForward(q.data_ptr(), kPtr, qOut.data_ptr(), kOutPtr, positions.data_ptr(),
                        invFreq.data_ptr(), tokens, qHeads, kvHeadCount, headDim, ldq, kStride, dtype.tag,
                        stream)
                : library.ropeBackward(q.data_ptr(), kPtr, qOut.data_ptr(), kOutPtr, positions.data_ptr(),
                        invFreq.data_ptr(), tokens, qHeads, kvHeadCount, headDim, ldq, kStride, dtype.tag,
                        stream));
    }

    /** Heads and headDim contiguous, tokens at any stride that does not overlap; returns the token stride. */
    private static long headStrided(String op, String name, Tensor t) {
        long heads = t.size(1), headDim = t.size(2);
        boolean ok = t.stride(2) == 1 && (heads <= 1 || t.stride(1) == headDim)
                && (t.size(0) <= 1 || t.stride(0) >= heads * headDim);
        if (!ok) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' must have contiguous heads and head"
                    + " dimension (sizes " + java.util.Arrays.toString(Checks.shape(t)) + ", strides "
                    + java.util.Arrays.toString(Checks.strides(t)) + ")");
        }
        return t.size(0) <= 1 ? Math.max(heads * headDim, 1) : t.stride(0);
    }

    private static void sameLayout(String op, String name, Tensor out, String inName, Tensor in, DType dtype) {
        Checks.defined(op, name, out);
        if (DType.of(out.scalar_type()) != dtype) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has dtype " + out.scalar_type()
                    + "; expected " + dtype.scalarType());
        }
        Checks.shape(op, name, out, Checks.shape(in));
        if (out.size(0) > 1 && out.stride(0) != in.stride(0) || out.stride(2) != 1
                || out.size(1) > 1 && out.stride(1) != in.stride(1)) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' must have the strides of '" + inName
                    + "' (" + java.util.Arrays.toString(Checks.strides(out)) + " vs "
                    + java.util.Arrays.toString(Checks.strides(in)) + ")");
        }
    }
}
