package dev.relat.ops;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Causal attention with a shared prefix and grouped-query heads, for training-size sequences,
 * forward and backward. Kernels: native/src/attention.cpp (CPU), kernels/attention.cu (CUDA).
 *
 * <p>Shapes (token-major, as the projections produce them): q, out, dout, dq {@code [tq, hq, D]}
 * contiguous; k, v {@code [tk, hkv, D]} with the last two dimensions contiguous and any row stride
 * (shared by k and v), so a slice {@code cache[0:tk]} of a preallocated KV cache is read in place;
 * dk, dv {@code [tk, hkv, D]} contiguous; lse {@code [tq, hq]} fp32. The first P = tk - tq keys
 * are a prefix that every query sees; query i sees keys 0 .. P + i. hq must be a multiple of hkv;
 * D is 64 or 128. Storage fp32, bf16 or fp16, accumulation fp32.
 */
public final class Attention {
    private static final String FWD = "attention_forward";
    private static final String BWD = "attention_backward";

    private Attention() {}

    /** The output and the fp32 log-sum-exp [tq, hq] the backward needs. */
    public record Output(Tensor out, Tensor lse) {}

    /** Gradients of q, k, v (k and v gradients include the prefix). */
    public record Gradients(Tensor dq, Tensor dk, Tensor dv) {}

    /**
     * {@return the usual softmax scale, 1/sqrt(headDim)}
     *
     * @param headDim D, the elements of one head
     */
    public static double defaultScale(long headDim) {
        return 1.0 / Math.sqrt(headDim);
    }

    /**
     * The forward into new tensors.
     *
     * @param q {@code [tq, hq, D]}, contiguous
     * @param k {@code [tk, hkv, D]}, tk &gt;= tq; a row-strided view is read in place
     * @param v the layout (sizes and strides) and dtype of k
     * @param scale multiplies q.k before the softmax, finite; usually {@link #defaultScale}
     * @return out {@code [tq, hq, D]} in q's dtype and the fp32 lse the backward needs
     */
    public static Output forward(Tensor q, Tensor k, Tensor v, double scale) {
        Checks.defined(FWD, "q", q);
        Checks.rank(FWD, "q", q, 3);
        Tensor out = torch.empty_like(q);
        Tensor lse = q.new_empty(new long[] {q.size(0), q.size(1)}, new TensorOptions(torch.ScalarType.Float));
        forward(q, k, v, scale, out, lse);
        return new Output(out, lse);
    }

    /**
     * The forward into caller-owned outputs.
     *
     * @param q {@code [tq, hq, D]}, contiguous
     * @param k {@code [tk, hkv, D]}, tk &gt;= tq; a row-strided view is read in place
     * @param v the layout (sizes and strides) and dtype of k
     * @param scale multiplies q.k before the softmax, finite; usually {@link #defaultScale}
     * @param out written: {@code [tq, hq, D]}, q's dtype, contiguous
     * @param lse written: fp32 {@code [tq, hq]}, the log-sum-exp of each (query, head)'s
     *     scaled, masked scores
     */
    public static void forward(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        Layout s = layout(FWD, q, k, v);
        Checks.dtype(FWD, "out", out, s.dtype);
        Checks.shape(FWD, "out", out, s.tq, s.hq, s.d);
        Checks.dtype(FWD, "lse", lse, DType.F32);
        Checks.shape(FWD, "lse", lse, s.tq, s.hq);
        Checks.sameDevice(FWD, new String[] {"q", "k", "v", "out", "lse"}, q, k, v, out, lse);
        Checks.finite(FWD, "scale", scale);
        Kernels.launch(FWD, q, (library, stream) -> library.attentionForward(q.data_ptr(),
                k.data_ptr(), v.data_ptr(), out.data_ptr(), lse.data_ptr(), s.tq, s.tk, s.hq, s.hkv,
                s.d, s.kvStride, (float) scale, s.dtype.tag, stream));
    }

    /**
     * The workspace a backward over these tensors needs, for allocating it once and passing it to
     * every call.
     *
     * @param q as for the backward
     * @param k as for the backward
     * @param v as for the backward
     * @return bytes of fp32 workspace on the device of q
     */
    public static long backwardWorkspaceBytes(Tensor q, Tensor k, Tensor v) {
        Layout s = layout(BWD, q, k, v);
        return Kernels.bytes(BWD, q.is_cuda(), (library, bytes) -> library
                .attentionBackwardWorkspaceBytes(s.tq, s.tk, s.hq, s.hkv, s.d, s.dtype.tag, bytes));
    }

    /**
     * The backward into new tensors; the workspace is allocated for the call.
     *
     * @param dout dL/dout, {@code [tq, hq, D]}, q's dtype, contiguous
     * @param q the forward's q
     * @param k the forward's k
     * @param v the forward's v
     * @param out the forward's out
     * @param lse the forward's lse, fp32 {@code [tq, hq]}
     * @param scale the forward's scale
     * @return dq in q's shape, and contiguous dk, dv {@code [tk, hkv, D]}, all in q's dtype
     */
    public static Gradients backward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
            double scale) {
        Layout s = layout(BWD, q, k, v);
        Tensor dq = torch.empty_like(q);
        Tensor dk = k.new_empty(new long[] {s.tk, s.hkv, s.d});
        Tensor dv = k.new_empty(new long[] {s.tk, s.hkv, s.d});
        backward(dout, q, k, v, out, lse, scale, dq, dk, dv, false, null);
        return new Gradients(dq, dk, dv);
    }

    /**
     * The backward into caller-owned outputs.
     *
     * @param dout dL/dout, {@code [tq, hq, D]}, q's dtype, contiguous
     * @param q the forward's q
     * @param k the forward's k
     * @param v the forward's v
     * @param out the forward's out
     * @param lse the forward's lse, fp32 {@code [tq, hq]}
     * @param scale the forward's scale
     * @param dq written: {@code [tq, hq, D]}, q's dtype, contiguous
     * @param dk written or added into: {@code [tk, hkv, D]}, q's dtype, contiguous
     * @param dv as dk
     * @param accumulateDkv add the gradients into dk and dv instead of overwriting them
     * @param workspace fp32, contiguous, at least {@link #backwardWorkspaceBytes} bytes, on q's
     *     device; or null to allocate one for the call
     */
    public static void backward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
            double scale, Tensor dq, Tensor dk, Tensor dv, boolean accumulateDkv, Tensor workspace) {
        Layout s = layout(BWD, q, k, v);
        for (String name : new String[] {"dout", "out", "dq"}) {
            Tensor t = name.equals("dout") ? dout : name.equals("out") ? out : dq;
            Checks.dtype(BWD, name, t, s.dtype);
            Checks.shape(BWD, name, t, s.tq, s.hq, s.d);
        }
        Checks.dtype(BWD, "lse", lse, DType.F32);
        Checks.shape(BWD, "lse", lse, s.tq, s.hq);
        Checks.dtype(BWD, "dk", dk, s.dtype);
        Checks.shape(BWD, "dk", dk, s.tk, s.hkv, s.d);
        Checks.dtype(BWD, "dv", dv, s.dtype);
        Checks.shape(BWD, "dv", dv, s.tk, s.hkv, s.d);
        Checks.finite(BWD, "scale", scale);
        long bytes = backwardWorkspaceBytes(q, k, v);
        if (workspace == null) {
            workspace = q.new_empty(new long[] {Math.max(1, (bytes + 3) / 4)},
                    new TensorOptions(torch.ScalarType.Float));
        } else {
            Checks.workspace(BWD, "workspace", workspace, bytes);
        }
        Checks.sameDevice(BWD, new String[] {"q", "k", "v", "dout", "out", "lse", "dq", "dk", "dv",
                "workspace"}, q, k, v, dout, out, lse, dq, dk, dv, workspace);
        Tensor ws = workspace;
        long wsBytes = ws.numel() * 4;
        int acc = accumulateDkv ? 1 : 0;
        Kernels.launch(BWD, q, (library, stream) -> library.attentionBackward(dout.data_ptr(),
                q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), lse.data_ptr(),
                dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), ws.data_ptr(), wsBytes, s.tq,
                s.tk, s.hq, s.hkv, s.d, s.kvStride, (float) scale, acc, s.dtype.tag, stream));
    }

    private record Layout(DType dtype, long tq, long tk, long hq, long hkv, long d, long kvStride) {}

    private static Layout layout(String op, Tensor q, Tensor k, Tensor v) {
        DType dtype = Checks.floating(op, "q", q);
        Checks.rank(op, "q", q, 3);
        Checks.defined(op, "k", k);
        if (DType.of(k.scalar_type()) != dtype) {
            throw new IllegalArgumentException(op + ": tensor 'k' has dtype " + k.scalar_type()
                    + "; expected " + dtype.scalarType());
        }
        Checks.floatingRows(op, "k", k, 3);
        Checks.sameLayout(op, "v", v, "k", k);
        if (DType.of(v.scalar_type()) != dtype) {
            throw new IllegalArgumentException(op + ": tensor 'v' has dtype " + v.scalar_type()
                    + "; expected " + dtype.scalarType());
        }
        long tq = q.size(0), hq = q.size(1), d = q.size(2), tk = k.size(0), hkv = k.size(1);
        if (k.size(2) != d) {
            throw new IllegalArgumentException(op + ": tensor 'k' has head dim " + k.size(2)
                    + " but 'q' has " + d);
        }
        if (hkv == 0 || hq % hkv != 0) {
            throw new IllegalArgumentException(op + ": 'q' has " + hq + " heads, not a multiple of the "
                    + hkv + " heads of 'k'");
        }
        if (tk < tq) {
            throw new IllegalArgumentException(op + ": 'k' has " + tk + " positions, fewer than the "
                    + tq + " queries of 'q' (the last tq keys are the queries' own)");
        }
        Checks.sameDevice(op, new String[] {"q", "k", "v"}, q, k, v);
        long kvStride = tk > 1 ? k.stride(0) : hkv * d;
        return new Layout(dtype, tq, tk, hq, hkv, d, kvStride);
    }
}
