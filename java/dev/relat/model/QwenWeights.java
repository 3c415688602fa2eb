package dev.relat.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * A model's weights as libtorch tensors on one device and dtype. The tensors survive any
 * PointerScope and belong to the {@link QwenModel} they were loaded for; nothing closes them, the
 * garbage collector frees them once neither the model nor this record is reachable. Shapes:
 * vocab = vocab_size, d = hidden_size.
 *
 * @param config the architecture the shapes follow
 * @param embedTokens the token embedding matrix [vocab, d]
 * @param layers one entry per decoder layer (an unmodifiable copy)
 * @param norm the final RMSNorm's weight [d]
 * @param lmHead the LM head [vocab, d]; the same tensor as embedTokens when the checkpoint ties them
 */
public record QwenWeights(QwenConfig config, Tensor embedTokens, List<LayerWeights> layers, Tensor norm,
        Tensor lmHead) {

    /**
     * Copies layers into an unmodifiable list.
     *
     * @param config the architecture
     * @param embedTokens [vocab, d]
     * @param layers one entry per decoder layer
     * @param norm [d]
     * @param lmHead [vocab, d], or embedTokens itself when tied
     */
    public QwenWeights {
        layers = List.copyOf(layers);
    }

    /**
     * Whether the LM head is the embedding matrix (tie_word_embeddings).
     *
     * @return true when lmHead and embedTokens are the same tensor
     */
    public boolean tied() {
        return lmHead == embedTokens;
    }

    /**
     * Every weight under its Hugging Face name (views, no copies); lm_head.weight is left out
     * when tied, as in the checkpoint.
     *
     * @return a new map in checkpoint order, of the weights' own tensors (do not close them)
     */
    public Map<String, Tensor> byName() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(QwenNames.EMBED, embedTokens);
        for (int i = 0; i < layers.size(); i++) {
            LayerWeights w = layers.get(i);
            m.put(QwenNames.layer(i, QwenNames.INPUT_NORM), w.inputNorm());
            m.put(QwenNames.layer(i, QwenNames.Q), w.q());
            m.put(QwenNames.layer(i, QwenNames.K), w.k());
            m.put(QwenNames.layer(i, QwenNames.V), w.v());
            if (w.qkvBias() != null) {
                m.put(QwenNames.layer(i, QwenNames.Q_BIAS), w.qBias());
                m.put(QwenNames.layer(i, QwenNames.K_BIAS), w.kBias());
                m.put(QwenNames.layer(i, QwenNames.V_BIAS), w.vBias());
            }
            m.put(QwenNames.layer(i, QwenNames.O), w.o());
            if (w.qNorm() != null) {
                m.put(QwenNames.layer(i, QwenNames.Q_NORM), w.qNorm());
                m.put(QwenNames.layer(i, QwenNames.K_NORM), w.kNorm());
            }
            m.put(QwenNames.layer(i, QwenNames.POST_NORM), w.postNorm());
            m.put(QwenNames.layer(i, QwenNames.GATE), w.gate());
            m.put(QwenNames.layer(i, QwenNames.UP), w.up());
            m.put(QwenNames.layer(i, QwenNames.DOWN), w.down());
        }
        m.put(QwenNames.NORM, norm);
        if (!tied()) m.put(QwenNames.LM_HEAD, lmHead);
        return m;
    }
}
