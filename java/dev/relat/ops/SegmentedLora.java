package dev.relat.ops;

import org.bytedeco.pytorch.Tensor;

/**
 * Segmented LoRA (S-LoRA / Punica): B questions' rows concatenated into one {@code [rows, ...]}
 * matrix, rows {@code [offsets[s], offsets[s+1])} belonging to question s, each question with its
 * own adapter {@code a[s] [rank, in]}, {@code b[s] [out, rank]} (fp32). {@code forward} adds
 * {@code scale * b[s] (a[s] x[t])} to each row of y (the delta rounded to y's dtype, then added:
 * {@code y.add_((x a^T b^T * scale).to(dtype))}); {@code backward} accumulates the adapters'
 * gradients and, optionally, adds the input gradient. A question's results depend only on its own
 * rows and adapter, bit for bit, whatever else the batch holds. Kernels:
 * native/src/lora_segmented.cpp (CPU), kernels/lora_segmented.cu (CUDA).
 */
public final class SegmentedLora {
    /** The most segments (questions) one call takes (RELAT_LORA_MAX_SEGMENTS in relat.h). */
    public static final int MAX_SEGMENTS = 256;
    /** The largest adapter rank (RELAT_LORA_MAX_RANK in relat.h). */
    public static final int MAX_RANK = 64;

    private static final String FORWARD = "lora_segmented_forward";
    private static final String BACKWARD = "lora_segmented_backward";

    private SegmentedLora() {}

    /**
     * y[t] += round(scale * b[s] (a[s] x[t])) for every row t of segment s.
     *
     * @param x {@code [rows, in]}, fp32, bf16 or fp16, contiguous
     * @param a {@code [segments, rank, in]} fp32, contiguous, x's device
     * @param b {@code [segments, out, rank]} fp32, contiguous, x's device
     * @param offsets int64 {@code [segments + 1]} on x's device: 0, nondecreasing, ending at rows
     *     (empty segments allowed); checked on the CPU, clamped into range on CUDA
     * @param scale the LoRA scale (alpha / rank), finite
     * @param y accumulated into: {@code [rows, out]}, x's dtype and device, contiguous, not
     *     overlapping any input
     */
    public static void forward(Tensor x, Tensor a, Tensor b, Tensor offsets, double scale, Tensor y) {
        long[] s = check(FORWARD, x, a, b, offsets, scale);
        DType dtype = DType.of(x.scalar_type());
        Checks.dtype(FORWARD, "y", y, dtype);
        Checks.shape(FORWARD, "y", y, s[1], s[3]);
        Checks.sameDevice(FORWARD, new String[] {"x", "a", "b", "offsets", "y"}, x, a, b, offsets, y);
        Kernels.launch(FORWARD, x, (library, stream) -> library.loraSegmentedForward(x.data_ptr(), a.data_ptr(),
                b.data_ptr(), offsets.data_ptr(), s[0], s[1], s[2], s[3], s[4], (float) scale, y.data_ptr(),
                dtype.tag, stream));
    }

    /**
     * Per segment s with rows X, dY: G = dY b[s], U = X a[s]^T; da[s] += scale G^T X,
     * db[s] += scale dY^T U (fp32), and dx[t] += round(scale * G[t] a[s]) when dx is given.
     *
     * @param x {@code [rows, in]}, the forward's input, fp32, bf16 or fp16, contiguous
     * @param dy {@code [rows, out]}, x's dtype and device, contiguous
     * @param a {@code [segments, rank, in]} fp32, contiguous, x's device
     * @param b {@code [segments, out, rank]} fp32, contiguous, x's device
     * @param offsets int64 {@code [segments + 1]} on x's device, as for {@link #forward}
     * @param scale the forward's scale, finite
     * @param da accumulated into: {@code [segments, rank, in]} fp32, contiguous, x's device
     * @param db accumulated into: {@code [segments, out, rank]} fp32, contiguous, x's device
     * @param dx accumulated into, or null for no input gradient: {@code [rows, in]}, x's dtype and
     *     device, contiguous; no output may overlap an input or another output
     */
    public static void backward(Tensor x, Tensor dy, Tensor a, Tensor b, Tensor offsets, double scale, Tensor da,
            Tensor db, Tensor dx) {
        long[] s = check(BACKWARD, x, a, b, offsets, scale);
        DType dtype = DType.of(x.scalar_type());
        Checks.dtype(BACKWARD, "dy", dy, dtype);
        Checks.shape(BACKWARD, "dy", dy, s[1], s[3]);
        Checks.dtype(BACKWARD, "da", da, DType.F32);
        Checks.shape(BACKWARD, "da", da, Checks.shape(a));
        Checks.dtype(BACKWARD, "db", db, DType.F32);
        Checks.shape(BACKWARD, "db", db, Checks.shape(b));
        boolean withDx = dx != null && !dx.isNull();
        if (withDx) {
            Checks.dtype(BACKWARD, "dx", dx, dtype);
            Checks.shape(BACKWARD, "dx", dx, s[1], s[2]);
        }
        Checks.sameDevice(BACKWARD, new String[] {"x", "dy", "a", "b", "offsets", "da", "db", "dx"}, x, dy, a, b,
                offsets, da, db, withDx ? dx : null);
        Kernels.launch(BACKWARD, x, (library, stream) -> library.loraSegmentedBackward(x.data_ptr(), dy.data_ptr(),
                a.data_ptr(), b.data_ptr(), offsets.data_ptr(), s[0], s[1], s[2], s[3], s[4], (float) scale,
                da.data_ptr(), db.data_ptr(), withDx ? dx.data_ptr() : null, dtype.tag, stream));
    }

    /** {segments, rows, in, out, rank} after checking x, a, b, offsets and scale. */
    private static long[] check(String op, Tensor x, Tensor a, Tensor b, Tensor offsets, double scale) {
        Checks.floating(op, "x", x);
        Checks.rank(op, "x", x, 2);
        Checks.dtype(op, "a", a, DType.F32);
        Checks.rank(op, "a", a, 3);
        Checks.dtype(op, "b", b, DType.F32);
        Checks.rank(op, "b", b, 3);
        Checks.int64(op, "offsets", offsets);
        Checks.rank(op, "offsets", offsets, 1);
        Checks.finite(op, "scale", scale);
        long rows = x.size(0);
        long in = x.size(1);
        long segments = a.size(0);
        long rank = a.size(1);
        long out = b.size(1);
        if (segments < 1 || segments > MAX_SEGMENTS) {
            throw new IllegalArgumentException(op + ": tensor 'a' has " + segments + " segments; this op takes 1 to "
                    + MAX_SEGMENTS);
        }
        if (rank < 1 || rank > MAX_RANK) {
            throw new IllegalArgumentException(op + ": tensor 'a' has rank " + rank + " (its dimension 1); this op"
                    + " takes 1 to " + MAX_RANK);
        }
        if (in < 1 || out < 1) {
            throw new IllegalArgumentException(op + ": empty projection, in " + in + ", out " + out);
        }
        Checks.shape(op, "a", a, segments, rank, in);
        Checks.shape(op, "b", b, segments, out, rank);
        Checks.shape(op, "offsets", offsets, segments + 1);
        return new long[] {segments, rows, in, out, rank};
    }
}
