package dev.relat.model;

import org.bytedeco.pytorch.Tensor;

/**
 * A low-rank (or any) correction added to the output of a layer's projections during the
 * forward, without touching the base weights: y += delta(x). The ReLAT engine's LoRA implements
 * it; the model only calls it. x is the projection's input [T, in] and y its base output [T, out]
 * (possibly a view into a fused projection: add in place). In a batched forward the rows belong to
 * several sequences ({@link Sequences}) and an adapter may correct each with its own weights (the
 * engine's per-question LoRA).
 */
public interface Adapter {
    /**
     * Whether this projection of this layer has a correction (the forward skips the call if not).
     *
     * @param layer the decoder layer, from 0
     * @param projection the projection
     * @return true when {@link #addTo} should be called for it
     */
    boolean targets(int layer, Projection projection);

    /**
     * y += delta(x), in place, inside the forward's per-layer PointerScope: temporaries made here
     * are freed when the layer ends.
     *
     * @param layer the decoder layer, from 0
     * @param projection the projection
     * @param x the projection's input [T, in] in the model dtype
     * @param y the projection's base output [T, out], possibly a view into a fused q|k|v or
     *     gate|up output; add to it in place, in its dtype
     * @param sequences which rows belong to which sequence of the batch (one for an unbatched
     *     forward)
     */
    void addTo(int layer, Projection projection, Tensor x, Tensor y, Sequences sequences);
}
