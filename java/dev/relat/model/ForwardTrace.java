package dev.relat.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * The activations of one forward chunk, recorded when a trace is passed to
 * {@link QwenModel#hidden}: what a hand-composed backward needs (engine issue #7). The tensors
 * survive any PointerScope the forward ran in; {@link #close} frees them (else the garbage
 * collector does once the trace is unreachable, which a long run should not rely on). One trace
 * records one forward; the tensors it hands out belong to it (read them, never close them).
 */
public final class ForwardTrace implements AutoCloseable {
    private final List<LayerActivations> layers = new ArrayList<>();
    private final List<Tensor> kept = new ArrayList<>();
    private Sequences sequences;
    private Tensor finalInput;
    private Tensor finalRstd;
    private Tensor finalNormed;

    /**
     * The sequences of the chunk: which rows are whose, and where each started in its cache.
     *
     * @return the forward's sequences (one for an unbatched forward), owned by the trace; null
     *     before the forward ran
     */
    public Sequences sequences() {
        return sequences;
    }

    /**
     * Positions in the chunk, over all its sequences.
     *
     * @return T, the rows of every recorded [T, ...] tensor
     */
    public int length() {
        return sequences.totalRows();
    }

    /**
     * What each decoder layer recorded.
     *
     * @return one entry per layer, in layer order (unmodifiable)
     */
    public List<LayerActivations> layers() {
        return Collections.unmodifiableList(layers);
    }

    /**
     * The residual stream entering the final norm.
     *
     * @return [T, hidden] in the model dtype
     */
    public Tensor finalInput() {
        return finalInput;
    }

    /**
     * The final norm's reciprocal RMS per row, saved for its backward.
     *
     * @return fp32 [T]
     */
    public Tensor finalRstd() {
        return finalRstd;
    }

    /**
     * The final hidden states h (what the LM head reads): the tensor the forward returned.
     *
     * @return [T, hidden] in the model dtype
     */
    public Tensor finalNormed() {
        return finalNormed;
    }

    void begin(Sequences sequences) {
        if (this.sequences != null) {
            throw new IllegalStateException("a ForwardTrace records one forward; use a new one");
        }
        this.sequences = sequences;
    }

    void add(LayerActivations a) {
        keepAll(a.input(), a.inputRstd(), a.inputNormed(), a.qRaw(), a.kRaw(), a.qRstd(), a.kRstd(), a.q(), a.k(),
                a.v(), a.attention(), a.attentionLse(), a.mid(), a.midRstd(), a.midNormed(), a.gateUp(), a.activated());
        layers.add(a);
    }

    void finish(Tensor input, Tensor rstd, Tensor normed) {
        keepAll(input, rstd, normed);
        finalInput = input;
        finalRstd = rstd;
        finalNormed = normed;
    }

    private void keepAll(Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null) kept.add(Tensors.keep(t));
        }
    }

    /** Releases the recorded tensors; the trace must not be used afterwards. */
    @Override
    public void close() {
        for (Tensor t : kept) t.releaseReference();
        kept.clear();
        layers.clear();
        if (sequences != null) sequences.close();
        finalInput = finalRstd = finalNormed = null;
    }
}
