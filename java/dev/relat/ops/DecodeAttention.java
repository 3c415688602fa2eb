package dev.relat.ops;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Decode attention: one query token per sequence over its KV cache (split along the sequence,
 * flash-decoding style), forward only. Kernels: native/src/decode_attention.cpp (CPU),
 * kernels/decode_attention.cu (CUDA).
 *
 * <p>q, out: {@code [batch, hq, D]} contiguous. The caches: {@code [batch, S, hkv, D]} (or
 * {@code [S, hkv, D]} for batch 1), the last two dimensions contiguous, any stride over positions
 * and sequences (shared by the K and V caches), so a cache preallocated to its maximum length S is
 * read in place. Each query attends to the first {@code maxLen} positions of its sequence, or, when
 * seqLens (int32 [batch], on the device of q) is given, to the first seqLens[b] of them (clamped to
 * [0, maxLen]; 0 gives out = 0).
 */
public final class DecodeAttention {
    private static final String OP = "decode_attention_forward";

    private DecodeAttention() {}

    /**
     * The workspace of one call: fp32 partials of every split of the sequence.
     *
     * @param batch sequences
     * @param hq query heads
     * @param headDim D
     * @param maxLen the call's maxLen; the size is not monotone in it (the split length grows in
     *     steps), so a workspace sized for one length may be too small for a shorter one
     * @param cuda size it for librelat_cuda rather than librelat_cpu
     * @return bytes of fp32 workspace
     */
    public static long workspaceBytes(long batch, long hq, long headDim, long maxLen, boolean cuda) {
        return Kernels.bytes(OP, cuda, (library, bytes) ->
                library.decodeAttentionWorkspaceBytes(batch, hq, headDim, maxLen, bytes));
    }

    /**
     * Positions at which the split count reaches its cap (native/common/attention_plan.h: 64
     * splits of at least 128 positions), so the workspace there is the largest any length needs.
     */
    private static final long LONGEST_SPLIT_PLAN = 64 * 128;

    /**
     * A workspace size enough for every maxLen: what one preallocated workspace needs.
     *
     * @param batch sequences
     * @param hq query heads
     * @param headDim D
     * @param cuda size it for librelat_cuda rather than librelat_cpu
     * @return bytes of fp32 workspace, at least {@link #workspaceBytes} at any maxLen
     */
    public static long maxWorkspaceBytes(long batch, long hq, long headDim, boolean cuda) {
        return workspaceBytes(batch, hq, headDim, LONGEST_SPLIT_PLAN, cuda);
    }

    /** Attends every sequence's query to the first {@code length} cache positions; returns out. */
    static Tensor forward(Tensor q, Tensor kCache, Tensor vCache, long length, double scale) {
        Checks.defined(OP, "q", q);
        Tensor out = torch.empty_like(q);
        forward(q, kCache, vCache, null, length, scale, out, null);
        return out;
    }

    /**
     * Decode attention into a caller-owned output.
     *
     * @param q {@code [batch, hq, D]}, contiguous; hq a multiple of hkv
     * @param kCache {@code [batch, S, hkv, D]} or {@code [S, hkv, D]} for batch 1, q's dtype
     * @param vCache the layout (sizes and strides) and dtype of kCache
     * @param seqLens int32 {@code [batch]} on q's device: each sequence's length; or null, every
     *     sequence then has maxLen positions
     * @param maxLen positions to attend to, in [0, S]; with seqLens, the bound they are clamped to
     * @param scale multiplies q.k before the softmax, finite; usually
     *     {@link Attention#defaultScale}
     * @param out written: {@code [batch, hq, D]}, q's dtype, contiguous
     * @param workspace fp32, contiguous, at least {@link #workspaceBytes} bytes, on q's device; or
     *     null to allocate one for the call
     */
    public static void forward(Tensor q, Tensor kCache, Tensor vCache, Tensor seqLens, long maxLen,
            double scale, Tensor out, Tensor workspace) {
        DType dtype = Checks.floating(OP, "q", q);
        Checks.rank(OP, "q", q, 3);
        long batch = q.size(0), hq = q.size(1), d = q.size(2);
        Checks.defined(OP, "kCache", kCache);
        int rank = (int) kCache.dim();
        if (rank != 3 && rank != 4) {
            throw new IllegalArgumentException(OP + ": tensor 'kCache' has rank " + rank
                    + "; expected [batch, S, hkv, D] or [S, hkv, D]");
        }
        Checks.floatingRows(OP, "kCache", kCache, rank);
        if (DType.of(kCache.scalar_type()) != dtype) {
            throw new IllegalArgumentException(OP + ": tensor 'kCache' has dtype " + kCache.scalar_type()
                    + "; expected " + dtype.scalarType());
        }
        Checks.sameLayout(OP, "vCache", vCache, "kCache", kCache);
        if (DType.of(vCache.scalar_type()) != dtype) {
            throw new IllegalArgumentException(OP + ": tensor 'vCache' has dtype " + vCache.scalar_type()
                    + "; expected " + dtype.scalarType());
        }
        long cacheBatch = rank == 4 ? kCache.size(0) : 1;
        long positions = kCache.size(rank - 3), hkv = kCache.size(rank - 2);
        if (cacheBatch != batch) {
            throw new IllegalArgumentException(OP + ": tensor 'kCache' holds " + cacheBatch
                    + " sequences but 'q' has " + batch);
        }
        if (kCache.size(rank - 1) != d) {
            throw new IllegalArgumentException(OP + ": tensor 'kCache' has head dim "
                    + kCache.size(rank - 1) + " but 'q' has " + d);
        }
        if (hkv == 0 || hq % hkv != 0) {
            throw new IllegalArgumentException(OP + ": 'q' has " + hq + " heads, not a multiple of the "
                    + hkv + " heads of 'kCache'");
        }
        if (maxLen < 0 || maxLen > positions) {
            throw new IllegalArgumentException(OP + ": length " + maxLen + " is outside the "
                    + positions + " positions of 'kCache'");
        }
        Checks.dtype(OP, "out", out, dtype);
        Checks.shape(OP, "out", out, batch, hq, d);
        if (seqLens != null) {
            Checks.defined(OP, "seqLens", seqLens);
            if (seqLens.scalar_type().value != torch.ScalarType.Int.value) {
                throw new IllegalArgumentException(OP + ": tensor 'seqLens' has dtype "
                        + seqLens.scalar_type() + "; expected Int");
            }
            Checks.contiguous(OP, "seqLens", seqLens);
            Checks.shape(OP, "seqLens", seqLens, batch);
        }
        Checks.finite(OP, "scale", scale);
        boolean cuda = q.is_cuda();
        long bytes = workspaceBytes(batch, hq, d, maxLen, cuda);
        if (workspace == null) {
            workspace = q.new_empty(new long[] {Math.max(1, (bytes + 3) / 4)},
                    new TensorOptions(torch.ScalarType.Float));
        } else {
            Checks.workspace(OP, "workspace", workspace, bytes);
        }
        Checks.sameDevice(OP, new String[] {"q", "kCache", "vCache", "out", "seqLens", "workspace"},
                q, kCache, vCache, out, seqLens, workspace);
        long seqStride = kCache.stride(rank - 3);
        long batchStride = rank == 4 ? kCache.stride(0) : 0;
        Tensor ws = workspace;
        long wsBytes = ws.numel() * 4;
        Kernels.launch(OP, q, (library, stream) -> library.decodeAttentionForward(q.data_ptr(),
                kCache.data_ptr(), vCache.data_ptr(), out.data_ptr(),
                seqLens == null ? null : seqLens.data_ptr(), batch, maxLen, hq, hkv, d, seqStride,
                batchStride, (float) scale, ws.data_ptr(), wsBytes, dtype.tag, stream));
    }
}
