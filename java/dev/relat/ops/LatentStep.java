package dev.relat.ops;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * The latent step: from the final hidden state h (after the final RMSNorm) to the next input
 * embedding e, in the three modes of the engine's {@code LatentMode}, each with its backward (dL/dh
 * from dL/de).
 * <ul>
 *   <li>{@code soft} (ReLAT default): e = softmax(U h / tau)^T E, one fused kernel per direction
 *       that sweeps U and E once and never stores the [batch, vocab] probabilities
 *       (native/src/latent_step.cpp, kernels/latent_step.cu).</li>
 *   <li>{@code realign} (LatentMAS): a = h W_a in fp32, e = a * targetNorm / max(||a||, 1e-6) per row,
 *       with W_a = (U^T U + lambda I)^-1 U^T E ({@link #realignMatrix}) and targetNorm the mean row
 *       norm of E ({@link #meanRowNorm}); libtorch GEMMs plus the relat row-rescale kernel.</li>
 *   <li>{@code identity}: e = h * targetNorm / max(||h||, 1e-6) per row (the realign rescale with
 *       W_a = I), the relat row-rescale kernel alone.</li>
 * </ul>
 * The rescale follows LatentMAS exactly: fp32 arithmetic, the norm clamped below at 1e-6, and the
 * result rounded to h's dtype once.
 */
public final class LatentStep {
    private static final String SOFT_FWD = "latent_soft_forward";
    private static final String SOFT_BWD = "latent_soft_backward";
    private static final String RESCALE_FWD = "row_rescale_forward";
    private static final String RESCALE_BWD = "row_rescale_backward";

    /** The lower clamp of the norm in the rescale (LatentMAS). */
    public static final double MIN_NORM = 1e-6;
    /** The ridge of the realign matrix, as LatentMAS computes it (fp32, once per model). */
    public static final double REALIGN_LAMBDA = 1e-5;

    private LatentStep() {}

    // ---- soft ----------------------------------------------------------------------------------

    /**
     * Soft forward result: e in h's dtype, and what the backward needs: lse [batch] fp32
     * (log-sum-exp of z = U h / tau) and e32 [batch, hidden] fp32 (e before rounding).
     */
    public record Soft(Tensor e, Tensor lse, Tensor e32) {}

    /**
     * The soft forward into new tensors: e = softmax(U h / tau)^T E.
     *
     * @param h {@code [batch, hidden]}, contiguous
     * @param u the LM head U, {@code [vocab, hidden]}, h's dtype, contiguous
     * @param emb the input embeddings E, as u; may be u itself (tied embeddings)
     * @param tau the softmax temperature, positive and finite
     * @return e and what the backward needs, all new tensors
     */
    public static Soft softForward(Tensor h, Tensor u, Tensor emb, double tau) {
        Checks.defined(SOFT_FWD, "h", h);
        Soft out = new Soft(torch.empty_like(h), h.new_empty(new long[] {rowsOf(h)}, f32()),
                h.new_empty(Checks.shape(h), f32()));
        softForward(h, u, emb, tau, out.e(), out.lse(), out.e32());
        return out;
    }

    /**
     * The soft forward into caller-owned outputs; the workspace comes from libtorch's allocator on
     * h's device.
     *
     * @param h {@code [batch, hidden]}, contiguous
     * @param u the LM head U, {@code [vocab, hidden]}, h's dtype, contiguous
     * @param emb the input embeddings E, as u; may be u itself (tied embeddings)
     * @param tau the softmax temperature, positive and finite
     * @param e written: shape and dtype of h
     * @param lse null (inference), or written: fp32, batch elements, log-sum-exp of U h / tau
     * @param e32 null (inference), or written: fp32 {@code [batch, hidden]}, e before rounding
     */
    public static void softForward(Tensor h, Tensor u, Tensor emb, double tau, Tensor e, Tensor lse, Tensor e32) {
        String op = SOFT_FWD;
        long[] dims = softChecks(op, h, u, emb, tau);
        long batch = dims[0], hidden = dims[1], vocab = dims[2];
        DType dtype = DType.of(h.scalar_type());
        Checks.dtype(op, "e", e, dtype);
        Checks.shape(op, "e", e, Checks.shape(h));
        if (lse != null) savedLse(op, lse, batch);
        if (e32 != null) {
            Checks.dtype(op, "e32", e32, DType.F32);
            Checks.shape(op, "e32", e32, Checks.shape(h));
        }
        Checks.sameDevice(op, new String[] {"h", "u", "emb", "e", "lse", "e32"}, h, u, emb, e, lse, e32);
        boolean cuda = h.is_cuda();
        if (cuda) Backend.requireCuda(op);
        long bytes = softWorkspaceBytes(batch, hidden, vocab, dtype, cuda)[0];
        Tensor ws = workspace(h, bytes);
        float invTau = (float) (1.0 / tau);
        Kernels.launch(op, h, (library, stream) -> library.latentSoftForward(h.data_ptr(),
                u.data_ptr(), emb.data_ptr(), e.data_ptr(), ptr(lse), ptr(e32), batch, hidden,
                vocab, invTau, ws.data_ptr(), bytes, dtype.tag, stream));
    }

    /**
     * The soft backward into a new tensor; one more sweep over U and E, the probabilities
     * recomputed from the saved lse.
     *
     * @param h the forward's h
     * @param u the forward's u
     * @param emb the forward's emb
     * @param tau the forward's tau
     * @param saved the forward's result (its lse and e32 are used)
     * @param de dL/de, shape and dtype of h
     * @return dL/dh, a new tensor with the shape and dtype of h
     */
    public static Tensor softBackward(Tensor h, Tensor u, Tensor emb, double tau, Soft saved, Tensor de) {
        Checks.defined(SOFT_BWD, "h", h);
        Tensor dh = torch.empty_like(h);
        softBackward(h, u, emb, tau, saved.lse(), saved.e32(), de, dh);
        return dh;
    }

    /**
     * The soft backward into a caller-owned output; the workspace comes from libtorch's allocator
     * on h's device.
     *
     * @param h the forward's h, {@code [batch, hidden]}
     * @param u the forward's u
     * @param emb the forward's emb
     * @param tau the forward's tau
     * @param lse the forward's lse, fp32, batch elements
     * @param e32 the forward's e32, fp32 {@code [batch, hidden]}
     * @param de dL/de, shape and dtype of h
     * @param dh written (overwritten): dL/dh, shape and dtype of h
     */
    public static void softBackward(Tensor h, Tensor u, Tensor emb, double tau, Tensor lse, Tensor e32, Tensor de,
            Tensor dh) {
        String op = SOFT_BWD;
        long[] dims = softChecks(op, h, u, emb, tau);
        long batch = dims[0], hidden = dims[1], vocab = dims[2];
        DType dtype = DType.of(h.scalar_type());
        savedLse(op, lse, batch);
        Checks.dtype(op, "e32", e32, DType.F32);
        Checks.shape(op, "e32", e32, Checks.shape(h));
        Checks.dtype(op, "de", de, dtype);
        Checks.shape(op, "de", de, Checks.shape(h));
        Checks.dtype(op, "dh", dh, dtype);
        Checks.shape(op, "dh", dh, Checks.shape(h));
        Checks.sameDevice(op, new String[] {"h", "u", "emb", "lse", "e32", "de", "dh"}, h, u, emb, lse, e32, de, dh);
        boolean cuda = h.is_cuda();
        if (cuda) Backend.requireCuda(op);
        long bytes = softWorkspaceBytes(batch, hidden, vocab, dtype, cuda)[1];
        Tensor ws = workspace(h, bytes);
        float invTau = (float) (1.0 / tau);
        Kernels.launch(op, h, (library, stream) -> library.latentSoftBackward(h.data_ptr(),
                u.data_ptr(), emb.data_ptr(), lse.data_ptr(), e32.data_ptr(), de.data_ptr(),
                dh.data_ptr(), batch, hidden, vocab, invTau, ws.data_ptr(), bytes, dtype.tag,
                stream));
    }

    /** Workspace bytes of the soft forward ([0]) and backward ([1]): the fused kernels' extra memory. */
    static long[] softWorkspaceBytes(long batch, long hidden, long vocab, DType dtype, boolean cuda) {
        long[] backward = new long[1];
        long forward = Kernels.bytes(SOFT_FWD, cuda, (library, bytes) ->
                library.latentSoftWorkspaceBytes(batch, hidden, vocab, dtype.tag, bytes, backward));
        return new long[] {forward, backward[0]};
    }

    private static long[] softChecks(String op, Tensor h, Tensor u, Tensor emb, double tau) {
        DType dtype = Checks.floating(op, "h", h);
        if (h.dim() != 2) {
            throw new IllegalArgumentException(op + ": tensor 'h' has rank " + h.dim() + "; expected [batch, hidden]");
        }
        long batch = h.size(0), hidden = h.size(1);
        if (hidden == 0) throw new IllegalArgumentException(op + ": tensor 'h' has an empty last dimension");
        Checks.dtype(op, "u", u, dtype);
        if (u.dim() != 2 || u.size(1) != hidden || u.size(0) == 0) {
            throw new IllegalArgumentException(op + ": tensor 'u' has shape "
                    + java.util.Arrays.toString(Checks.shape(u)) + "; expected [vocab, " + hidden + "]");
        }
        Checks.dtype(op, "emb", emb, dtype);
        Checks.shape(op, "emb", emb, u.size(0), hidden);
        Checks.positive(op, "tau", tau);
        return new long[] {batch, hidden, u.size(0)};
    }

    private static void savedLse(String op, Tensor lse, long batch) {
        Checks.dtype(op, "lse", lse, DType.F32);
        if (lse.numel() != batch) {
            throw new IllegalArgumentException(op + ": tensor 'lse' has " + lse.numel()
                    + " elements; expected one per row of h (" + batch + ")");
        }
    }

    // ---- realign -------------------------------------------------------------------------------

    /**
     * W_a = (U^T U + lambda I)^-1 U^T E in fp32, computed once per model. U and E are converted to
     * fp32 in chunks of rows, so no fp32 copy of the whole vocabulary is ever held.
     *
     * @param u the LM head U, {@code [vocab, hidden]}, floating, contiguous
     * @param emb the input embeddings E, u's shape and dtype; may be u itself (tied)
     * @param lambda the ridge, &gt;= 0; LatentMAS uses {@link #REALIGN_LAMBDA}
     * @return fp32 {@code [hidden, hidden]}, contiguous, on u's device
     */
    public static Tensor realignMatrix(Tensor u, Tensor emb, double lambda) {
        String op = "realign_matrix";
        DType dtype = Checks.floating(op, "u", u);
        if (u.dim() != 2) throw new IllegalArgumentException(op + ": tensor 'u' must be [vocab, hidden]");
        Checks.dtype(op, "emb", emb, dtype);
        Checks.shape(op, "emb", emb, Checks.shape(u));
        Checks.sameDevice(op, new String[] {"u", "emb"}, u, emb);
        if (!(lambda >= 0)) throw new IllegalArgumentException(op + ": lambda must be >= 0, got " + lambda);
        long vocab = u.size(0), hidden = u.size(1);
        boolean tied = u.data_ptr().address() == emb.data_ptr().address();
        Tensor gram = u.new_zeros(new long[] {hidden, hidden}, f32());
        Tensor rhs = tied ? null : u.new_zeros(new long[] {hidden, hidden}, f32());
        long chunk = 16384;
        for (long v0 = 0; v0 < vocab; v0 += chunk) {
            long n = Math.min(chunk, vocab - v0);
            Tensor uc = u.narrow(0, v0, n).to(torch.ScalarType.Float);
            gram.add_(uc.t().mm(uc));
            if (!tied) rhs.add_(uc.t().mm(emb.narrow(0, v0, n).to(torch.ScalarType.Float)));
        }
        if (tied) rhs = gram.clone();
        gram.diagonal().add_(new Scalar(lambda));
        return torch.linalg_solve(gram, rhs).contiguous();
    }

    /**
     * The rescale target of realign and identity: computed in fp32 by chunks of rows, read back
     * with one host sync; once per model.
     *
     * @param emb the input embeddings E, {@code [vocab, hidden]}, floating, contiguous
     * @return the mean L2 norm of E's rows
     */
    public static double meanRowNorm(Tensor emb) {
        String op = "mean_row_norm";
        Checks.floating(op, "emb", emb);
        if (emb.dim() != 2) throw new IllegalArgumentException(op + ": tensor 'emb' must be [vocab, hidden]");
        long vocab = emb.size(0);
        Tensor sum = emb.new_zeros(new long[] {}, f32());
        long chunk = 16384;
        for (long v0 = 0; v0 < vocab; v0 += chunk) {
            long n = Math.min(chunk, vocab - v0);
            Tensor ec = emb.narrow(0, v0, n).to(torch.ScalarType.Float);
            sum.add_(torch.linalg_vector_norm(ec, new Scalar(2.0), new long[] {1}, false,
                    new ScalarTypeOptional()).sum());
        }
        return sum.item_double() / vocab;
    }

    /** Realign forward result: e in h's dtype and a = h W_a (fp32), which the backward needs. */
    public record Realign(Tensor e, Tensor a) {}

    /**
     * The realign forward: e = (h W_a) * targetNorm / max(||h W_a||, 1e-6) per row, computed in
     * fp32, rounded to h's dtype.
     *
     * @param h {@code [..., hidden]}, contiguous
     * @param wa W_a from {@link #realignMatrix}, fp32 {@code [hidden, hidden]}
     * @param targetNorm from {@link #meanRowNorm}, finite and &gt;= 0
     * @return e in h's dtype and a = h W_a in fp32, new tensors
     */
    public static Realign realignForward(Tensor h, Tensor wa, double targetNorm) {
        String op = "latent_realign_forward";
        DType dtype = Checks.floating(op, "h", h);
        Checks.dtype(op, "wa", wa, DType.F32);
        Checks.shape(op, "wa", wa, h.size(-1), h.size(-1));
        Tensor a = torch.matmul(h.to(torch.ScalarType.Float), wa).contiguous();
        Tensor e32 = torch.empty_like(a);
        rescaleForward(a, targetNorm, MIN_NORM, e32);
        return new Realign(dtype == DType.F32 ? e32 : e32.to(dtype.scalarType()), a);
    }

    /**
     * The realign backward.
     *
     * @param a the forward's a, fp32
     * @param wa the forward's W_a
     * @param targetNorm the forward's targetNorm
     * @param de dL/de, a's shape, floating (converted to fp32)
     * @param hDtype the dtype of the forward's h
     * @return dL/dh, a new tensor of a's shape in hDtype
     */
    public static Tensor realignBackward(Tensor a, Tensor wa, double targetNorm, Tensor de, DType hDtype) {
        String op = "latent_realign_backward";
        Checks.dtype(op, "a", a, DType.F32);
        Checks.floating(op, "de", de);
        Checks.shape(op, "de", de, Checks.shape(a));
        Tensor da = torch.empty_like(a);
        rescaleBackward(a, de.to(torch.ScalarType.Float).contiguous(), targetNorm, MIN_NORM, da);
        Tensor dh = torch.matmul(da, wa.t());
        return hDtype == DType.F32 ? dh : dh.to(hDtype.scalarType());
    }

    // ---- identity ------------------------------------------------------------------------------

    /**
     * The identity forward: e = h * targetNorm / max(||h||, 1e-6) per row, fp32 arithmetic.
     *
     * @param h {@code [..., hidden]}, contiguous
     * @param targetNorm from {@link #meanRowNorm}, finite and &gt;= 0
     * @return e, a new tensor with the shape and dtype of h
     */
    public static Tensor identityForward(Tensor h, double targetNorm) {
        Checks.defined(RESCALE_FWD, "h", h);
        Tensor e = torch.empty_like(h);
        rescaleForward(h, targetNorm, MIN_NORM, e);
        return e;
    }

    /**
     * The identity backward.
     *
     * @param h the forward's h
     * @param targetNorm the forward's targetNorm
     * @param de dL/de, shape and dtype of h
     * @return dL/dh, a new tensor with the shape and dtype of h
     */
    public static Tensor identityBackward(Tensor h, double targetNorm, Tensor de) {
        Checks.defined(RESCALE_BWD, "h", h);
        Tensor dh = torch.empty_like(h);
        rescaleBackward(h, de, targetNorm, MIN_NORM, dh);
        return dh;
    }

    // ---- the row-rescale kernel ----------------------------------------------------------------

    /** y = x * targetNorm / max(||x||, minNorm) per row (last dimension); y may be x. */
    static void rescaleForward(Tensor x, double targetNorm, double minNorm, Tensor y) {
        String op = RESCALE_FWD;
        long[] rc = rescaleChecks(op, x, targetNorm, minNorm);
        DType dtype = DType.of(x.scalar_type());
        Checks.dtype(op, "y", y, dtype);
        Checks.shape(op, "y", y, Checks.shape(x));
        Checks.sameDevice(op, new String[] {"x", "y"}, x, y);
        Kernels.launch(op, x, (library, stream) -> library.rowRescaleForward(x.data_ptr(),
                y.data_ptr(), rc[0], rc[1], (float) targetNorm, (float) minNorm, dtype.tag,
                stream));
    }

    /** dx from dy for the rescale above; dx may be dy. */
    static void rescaleBackward(Tensor x, Tensor dy, double targetNorm, double minNorm, Tensor dx) {
        String op = RESCALE_BWD;
        long[] rc = rescaleChecks(op, x, targetNorm, minNorm);
        DType dtype = DType.of(x.scalar_type());
        Checks.dtype(op, "dy", dy, dtype);
        Checks.shape(op, "dy", dy, Checks.shape(x));
        Checks.dtype(op, "dx", dx, dtype);
        Checks.shape(op, "dx", dx, Checks.shape(x));
        Checks.sameDevice(op, new String[] {"x", "dy", "dx"}, x, dy, dx);
        Kernels.launch(op, x, (library, stream) -> library.rowRescaleBackward(x.data_ptr(),
                dy.data_ptr(), dx.data_ptr(), rc[0], rc[1], (float) targetNorm, (float) minNorm,
                dtype.tag, stream));
    }

    private static long[] rescaleChecks(String op, Tensor x, double targetNorm, double minNorm) {
        Checks.floating(op, "x", x);
        Checks.minRank(op, "x", x, 1);
        long cols = x.size(-1);
        if (cols == 0) throw new IllegalArgumentException(op + ": tensor 'x' has an empty last dimension");
        if (!(targetNorm >= 0) || Double.isInfinite(targetNorm)) {
            throw new IllegalArgumentException(op + ": targetNorm must be finite and >= 0, got " + targetNorm);
        }
        Checks.positive(op, "minNorm", minNorm);
        return new long[] {x.numel() / cols, cols};
    }

    // ---- helpers -------------------------------------------------------------------------------

    private static long rowsOf(Tensor h) {
        return h.dim() == 0 ? 0 : h.size(0);
    }

    private static TensorOptions f32() {
        return new TensorOptions(torch.ScalarType.Float);
    }

    private static Tensor workspace(Tensor like, long bytes) {
        return like.new_empty(new long[] {Math.max(bytes, 1)}, new TensorOptions(torch.ScalarType.Byte));
    }

    private static org.bytedeco.javacpp.Pointer ptr(Tensor t) {
        return t == null ? null : t.data_ptr();
    }
}
