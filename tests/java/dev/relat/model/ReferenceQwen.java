package dev.relat.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The plain-libtorch reference: Hugging Face's Qwen2 / Qwen3 eager forward written with libtorch
 * ops only (no relat kernel, no KV cache, separate q/k/v/gate/up weights, explicit repeat_kv and
 * masked softmax attention), computing in the given dtype with HF's own casts (RMSNorm and
 * softmax in fp32, RoPE tables cast to the model dtype). Every call recomputes the whole sequence.
 * It is the correctness reference for QwenModel and the baseline of the model benchmarks.
 */
public final class ReferenceQwen {
    private final QwenConfig config;
    private final Map<String, Tensor> weights;
    private final ScalarType dtype;
    /** LoRA by base weight name: {A [r, in], B [out, r]}; y += scale (x A^T) B^T. */
    private Map<String, Tensor[]> lora = Map.of();
    private double loraScale;

    /** weights by Hugging Face name (any dtype; cast to dtype where they are, on one device: the reference runs there). */
    public ReferenceQwen(QwenConfig config, Map<String, Tensor> weights, ScalarType dtype) {
        this.config = config;
        this.dtype = dtype;
        Map<String, Tensor> cast = new LinkedHashMap<>();
        weights.forEach((k, v) -> cast.put(k, v.to(dtype)));
        this.weights = cast;
    }

    /** Adds LoRA terms to the named projections (tensors may require grad: autograd flows into them). */
    public ReferenceQwen withLora(Map<String, Tensor[]> adapters, double scale) {
        this.lora = Map.copyOf(adapters);
        this.loraScale = scale;
        return this;
    }

    /** The device of the weights, where the reference computes. */
    public Device device() {
        return w(QwenNames.EMBED).device();
    }

    /** Token ids as a tensor on the weights' device. */
    public Tensor ids(long[] ids) {
        Tensor t = Tensor.create(ids);
        return device().is_cpu() ? t : t.to(device(), ScalarType.Long);
    }

    /** The embedding matrix E and the LM head U (E when tied), cast to dtype. */
    public Tensor embeddingMatrix() {
        return w(QwenNames.EMBED);
    }

    public Tensor lmHeadMatrix() {
        return config.tieWordEmbeddings() ? w(QwenNames.EMBED) : w(QwenNames.LM_HEAD);
    }

    /** The final-norm hidden states [T, hidden] of a sequence given as input embeddings (autograd-friendly). */
    public Tensor hiddenFromEmbeddings(Tensor embeds) {
        return finalHidden(embeds);
    }

    /** fp32, as HF computes norms and softmax, or fp64 when the whole reference runs in fp64. */
    private ScalarType accumulation() {
        return dtype == ScalarType.Double ? ScalarType.Double : ScalarType.Float;
    }

    private Tensor w(String name) {
        Tensor t = weights.get(name);
        if (t == null) throw new IllegalStateException("reference: no weight " + name);
        return t;
    }

    /** Logits [T, vocab] (in dtype) of every position of ids. */
    public Tensor logits(long[] ids) {
        return logitsFromEmbeddings(torch.embedding(w(QwenNames.EMBED), ids(ids)));
    }

    /** Logits [1, vocab] of the last position only (the LM head applied to one row, as a decode needs). */
    public Tensor lastLogits(long[] ids) {
        Tensor h = finalHidden(torch.embedding(w(QwenNames.EMBED), ids(ids)));
        return head(h.narrow(0, h.size(0) - 1, 1));
    }

    /** Logits [T, vocab] of a sequence given as input embeddings [T, hidden]. */
    public Tensor logitsFromEmbeddings(Tensor embeds) {
        return head(finalHidden(embeds));
    }

    private Tensor head(Tensor h) {
        return torch.linear(h, config.tieWordEmbeddings() ? w(QwenNames.EMBED) : w(QwenNames.LM_HEAD));
    }

    /**
     * The keys (after RoPE) and values [Hkv, S, D] of every layer for the positions seen so far, as
     * a libtorch user would keep them (torch.cat per step); autograd flows through them.
     */
    public static final class Cache {
        private final List<Tensor> keys = new ArrayList<>();
        private final List<Tensor> values = new ArrayList<>();
        private long length;

        public long length() {
            return length;
        }
    }

    /** The final-norm hidden states [T, hidden] of new positions after those in cache (appended to it). */
    public Tensor hiddenFromEmbeddings(Tensor embeds, Cache cache) {
        return finalHidden(embeds, cache);
    }

    /** The final-norm hidden states [T, hidden]. */
    private Tensor finalHidden(Tensor embeds) {
        return finalHidden(embeds, null);
    }

    private Tensor finalHidden(Tensor embeds, Cache cache) {
        long t = embeds.size(0);
        long start = cache == null ? 0 : cache.length;
        int hq = config.numAttentionHeads();
        int hkv = config.numKeyValueHeads();
        int d = config.headDim();
        Tensor[] rope = rope(start, t);
        // query i (position start + i) sees keys 0 .. start + i
        Tensor mask = torch.ones(new long[] {t, start + t},
                new TensorOptions(ScalarType.Bool).device(new DeviceOptional(device()))).triu(start + 1);
        Tensor x = embeds.to(dtype);
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            Tensor h = rmsNorm(x, w(QwenNames.layer(i, QwenNames.INPUT_NORM)));
            Tensor q = linear(h, QwenNames.layer(i, QwenNames.Q), config.qkvBias() ? QwenNames.layer(i, QwenNames.Q_BIAS) : null)
                    .view(t, hq, d);
            Tensor k = linear(h, QwenNames.layer(i, QwenNames.K), config.qkvBias() ? QwenNames.layer(i, QwenNames.K_BIAS) : null)
                    .view(t, hkv, d);
            Tensor v = linear(h, QwenNames.layer(i, QwenNames.V), config.qkvBias() ? QwenNames.layer(i, QwenNames.V_BIAS) : null)
                    .view(t, hkv, d);
            if (config.qkNorm()) {
                q = rmsNorm(q, w(QwenNames.layer(i, QwenNames.Q_NORM)));
                k = rmsNorm(k, w(QwenNames.layer(i, QwenNames.K_NORM)));
            }
            // [H, T, D]
            q = applyRope(q.transpose(0, 1), rope);
            k = applyRope(k.transpose(0, 1), rope);
            v = v.transpose(0, 1);
            if (cache != null) {
                if (cache.keys.size() > i) {
                    k = torch.cat(new TensorVector(cache.keys.get(i), k), 1);
                    v = torch.cat(new TensorVector(cache.values.get(i), v), 1);
                    cache.keys.set(i, k);
                    cache.values.set(i, v);
                } else {
                    cache.keys.add(k);
                    cache.values.add(v);
                }
            }
            k = k.repeat_interleave(config.groupSize(), new LongOptional(0), new LongOptional());
            v = v.repeat_interleave(config.groupSize(), new LongOptional(0), new LongOptional());
            Tensor scores = torch.matmul(q, k.transpose(1, 2)).mul(new Scalar(1.0 / Math.sqrt(d)));
            scores = scores.masked_fill(mask, new Scalar(Double.NEGATIVE_INFINITY));
            Tensor probs = scores.softmax(-1, new ScalarTypeOptional(accumulation())).to(dtype);
            Tensor attn = torch.matmul(probs, v).transpose(0, 1).reshape(t, (long) hq * d);
            x = x.add(linear(attn, QwenNames.layer(i, QwenNames.O), null));
            Tensor h2 = rmsNorm(x, w(QwenNames.layer(i, QwenNames.POST_NORM)));
            Tensor gate = linear(h2, QwenNames.layer(i, QwenNames.GATE), null);
            Tensor up = linear(h2, QwenNames.layer(i, QwenNames.UP), null);
            x = x.add(linear(torch.silu(gate).mul(up), QwenNames.layer(i, QwenNames.DOWN), null));
        }
        if (cache != null) cache.length += t;
        return rmsNorm(x, w(QwenNames.NORM));
    }

    /** Greedy decoding by recomputing the whole sequence for every new token. */
    public long[] greedy(long[] prompt, int newTokens) {
        long[] seq = Arrays.copyOf(prompt, prompt.length + newTokens);
        for (int i = 0; i < newTokens; i++) {
            try (PointerScope scope = new PointerScope()) {
                Tensor logits = logits(Arrays.copyOf(seq, prompt.length + i));
                seq[prompt.length + i] = torch.argmax(logits.select(0, logits.size(0) - 1)).item_long();
            }
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    private Tensor linear(Tensor x, String weight, String bias) {
        Tensor y = bias == null ? torch.linear(x, w(weight)) : torch.linear(x, w(weight), new TensorOptional(w(bias)));
        Tensor[] ab = lora.get(weight);
        if (ab == null) return y;
        Tensor delta = torch.matmul(torch.matmul(x.to(ab[0].scalar_type()), ab[0].t()), ab[1].t()).mul(new Scalar(loraScale));
        return y.add(delta.to(y.scalar_type()));
    }

    /** Hugging Face's Qwen RMSNorm: fp32 variance, cast back, then times the weight. */
    private Tensor rmsNorm(Tensor x, Tensor weight) {
        Tensor xf = x.to(accumulation());
        Tensor variance = xf.pow(new Scalar(2)).mean(new long[] {-1}, true, new ScalarTypeOptional());
        Tensor normed = xf.mul(torch.rsqrt(variance.add(new Scalar(config.rmsNormEps()))));
        return weight.mul(normed.to(dtype));
    }

    /** cos, sin [T, D] as HF computes them: fp32 inv_freq and angles, cast to the model dtype. */
    private Tensor[] rope(long start, long t) {
        int d = config.headDim();
        Tensor exponents = torch.arange(new Scalar(0), new Scalar(d), new Scalar(2),
                        new TensorOptions(ScalarType.Long).device(new DeviceOptional(device())))
                .to(ScalarType.Float).div(new Scalar((double) d));
        Tensor invFreq = torch.pow(new Scalar(config.ropeTheta()), exponents).reciprocal();
        Tensor positions = torch.arange(new Scalar(start), new Scalar(start + t),
                        new TensorOptions(ScalarType.Long).device(new DeviceOptional(device())))
                .to(ScalarType.Float);
        Tensor freqs = positions.unsqueeze(1).mul(invFreq.unsqueeze(0));
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), -1);
        return new Tensor[] {emb.cos().to(dtype), emb.sin().to(dtype)};
    }

    /** x [H, T, D]: x * cos + rotate_half(x) * sin in the model dtype. */
    private static Tensor applyRope(Tensor x, Tensor[] rope) {
        long half = x.size(2) / 2;
        Tensor rotated = torch.cat(new TensorVector(x.narrow(2, half, half).neg(), x.narrow(2, 0, half)), -1);
        return x.mul(rope[0]).add(rotated.mul(rope[1]));
    }
}
