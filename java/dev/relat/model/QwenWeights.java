package dev.relat.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * A model's weights as libtorch tensors on one device and dtype.
 *
 * @param lmHead the same tensor as embedTokens when the checkpoint ties them
 */
public record QwenWeights(QwenConfig config, Tensor embedTokens, List<LayerWeights> layers, Tensor norm,
        Tensor lmHead) {

    public QwenWeights {
        layers = List.copyOf(layers);
    }

    /** True when the LM head is the embedding matrix. */
    public boolean tied() {
        return lmHead == embedTokens;
    }

    /**
     * Every weight under its Hugging Face name (views, no copies); lm_head.weight is left out
     * when tied, as in the checkpoint.
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
