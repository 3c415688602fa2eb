package dev.relat.model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Per-layer memory scoping. The forward and the backward open a PointerScope per decoder layer so
 * that a layer's temporaries are freed as soon as the layer is done, instead of piling up in the
 * caller's scope for the whole chunk (on a 28-layer model that is gigabytes per training step).
 * What a layer hands on (its output, its input gradient) is moved out with {@link #escape}.
 */
public final class Scopes {
    private Scopes() {}

    /**
     * Makes t outlive the scope it was created in: it joins outer (the scope that was innermost
     * before the layer's own scope opened), or, when there was none, is left to the garbage
     * collector like any tensor created outside a scope.
     *
     * @param t a tensor made inside the layer's scope
     * @param outer {@code PointerScope.getInnerScope()} taken before the layer's scope opened; may
     *     be null
     * @return t
     */
    public static Tensor escape(Tensor t, PointerScope outer) {
        if (outer != null) {
            outer.attach(t);
        } else {
            t.retainReference();
        }
        return t;
    }
}
