package dev.relat.model;

import dev.relat.ops.DecodeAttention;
import java.util.EnumMap;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Preallocated activations for untraced forwards of up to {@link #rows()} rows (decode steps, the
 * llm.c way): every layer of every step writes its norm outputs, q|k|v, attention output,
 * projections, SwiGLU, residuals, the logits and the decode-attention workspace into the same
 * buffers, so a long decode neither allocates its activations nor faults in fresh pages each
 * token. One set per decoding question
 * (or batch); made by {@link QwenModel#newBuffers}. What a forward returns through them is a view
 * of these buffers: valid until the next forward with the same buffers, and not to be closed.
 * The buffers survive any PointerScope and are freed by {@link #close} (or by the garbage
 * collector). A trace cannot use them: a traced forward keeps every layer's activations.
 */
public final class ForwardBuffers implements AutoCloseable {
    /** One activation of a layer (or of the head), [rows, width] each. */
    enum Slot {
        NORMED, QKV, Q, K, ATTENTION, LSE, PROJECTED, MID, MID_NORMED, GATE_UP, ACTIVATED, RESIDUAL, FINAL, LOGITS
    }

    private final int rows;
    private final Map<Slot, Tensor> buffers = new EnumMap<>(Slot.class);
    private final Map<Slot, Tensor> views = new EnumMap<>(Slot.class);
    private Tensor decodeWorkspace;
    private int viewRows;

    ForwardBuffers(QwenConfig config, int rows, Device device, ScalarType dtype, boolean decodeAttention) {
        if (rows < 1) throw new IllegalArgumentException("forward buffers need at least 1 row, got " + rows);
        this.rows = rows;
        for (Slot slot : Slot.values()) {
            ScalarType type = slot == Slot.LSE ? ScalarType.Float : dtype;
            buffers.put(slot, Tensors.keep(Tensors.empty(Tensors.options(type, device), rows, width(config, slot))));
        }
        if (decodeAttention) {
            long bytes = DecodeAttention.maxWorkspaceBytes(1, config.numAttentionHeads(), config.headDim(),
                    device.is_cuda());
            decodeWorkspace = Tensors.keep(Tensors.empty(Tensors.options(ScalarType.Float, device), (bytes + 3) / 4));
        }
    }

    /** Columns of a slot for a config. */
    static long width(QwenConfig c, Slot slot) {
        long nq = (long) c.numAttentionHeads() * c.headDim();
        long nkv = (long) c.numKeyValueHeads() * c.headDim();
        return switch (slot) {
            case NORMED, PROJECTED, MID, MID_NORMED, RESIDUAL, FINAL -> c.hiddenSize();
            case QKV -> nq + 2 * nkv;
            case Q, ATTENTION -> nq;
            case K -> nkv;
            case LSE -> c.numAttentionHeads();
            case GATE_UP -> 2L * c.intermediateSize();
            case ACTIVATED -> c.intermediateSize();
            case LOGITS -> c.vocabSize();
        };
    }

    /**
     * The most rows one forward through these buffers may have.
     *
     * @return the rows they were made for
     */
    public int rows() {
        return rows;
    }

    /** Whether a forward of t rows fits. */
    boolean fits(int t) {
        return t >= 1 && t <= rows;
    }

    /**
     * The first t rows of a slot, [t, width], contiguous: a view owned here (the views of the last
     * row count are kept, so a decode loop makes none after its first step).
     */
    Tensor rows(Slot slot, int t) {
        if (!fits(t)) throw new IllegalArgumentException("forward buffers hold " + rows + " rows, not " + t);
        if (buffers.isEmpty()) throw new IllegalStateException("forward buffers used after close");
        if (t != viewRows) {
            releaseViews();
            viewRows = t;
        }
        Tensor view = views.get(slot);
        if (view == null) {
            view = Tensors.keep(buffers.get(slot).narrow(0, 0, t));
            views.put(slot, view);
        }
        return view;
    }

    /** The decode-attention kernel's fp32 workspace for one sequence at any cache length. */
    Tensor decodeWorkspace() {
        if (buffers.isEmpty()) throw new IllegalStateException("forward buffers used after close");
        return decodeWorkspace;
    }

    private void releaseViews() {
        for (Tensor v : views.values()) v.releaseReference();
        views.clear();
    }

    /** Frees the buffers now (else the garbage collector frees them); they are unusable after. */
    @Override
    public void close() {
        releaseViews();
        for (Tensor b : buffers.values()) b.releaseReference();
        buffers.clear();
        if (decodeWorkspace != null) decodeWorkspace.releaseReference();
        decodeWorkspace = null;
    }
}
