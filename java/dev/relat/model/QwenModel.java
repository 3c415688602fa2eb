package dev.relat.model;

import dev.relat.model.ForwardBuffers.Slot;
import dev.relat.ops.Attention;
import dev.relat.ops.DecodeAttention;
import dev.relat.ops.RmsNorm;
import dev.relat.ops.Rope;
import dev.relat.ops.SwiGlu;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The Qwen2 / Qwen3 causal LM forward for one sequence with its KV cache, or for several at once
 * (each with its own cache, {@link Sequences}):
 * embedding, then per layer RMSNorm, fused q|k|v projection (+bias for qwen2), QK-norm (qwen3),
 * RoPE, grouped-query causal attention over the cache, o projection, residual, RMSNorm, SwiGLU
 * MLP, residual; then the final RMSNorm and the LM head.
 *
 * <p>Every step is one method ({@link #rmsNorm}, {@link #qkNorm}, {@link #rope},
 * {@link #attention}, {@link #swiglu}, {@link #embed}, {@link #lmHead}) so each can move to a
 * relat kernel on its own. RMSNorm and the QK-norm run relat's kernel; with head_dim 64 or 128
 * (every real Qwen model) RoPE and attention run relat's kernels too (the attention kernel's
 * log-sum-exp is what the engine's backward needs); other head dims, which only tiny test models
 * have, fall back to libtorch for those two. SwiGLU is relat's kernel; embedding and the GEMMs are libtorch. A
 * forward appends T positions to the cache; input is token ids or input embeddings (the latent
 * steps feed embeddings). An {@link Adapter} (the engine's LoRA) may add its correction to every
 * projection. Only the caller decides what crosses to the host: nothing here reads a tensor value
 * back.
 *
 * <p>Memory: each decoder layer runs in its own PointerScope, so its temporaries are freed when the
 * layer ends; what lives on (the hidden states handed to the next layer, the returned h) goes to the
 * caller's PointerScope (if any), and what a trace records stays until the trace is closed. An
 * untraced forward may instead write every activation into preallocated {@link ForwardBuffers}
 * (the decode loops do: one set per decode, no activation allocated per token; a single query row
 * then attends through the split decode-attention kernel). The generation loop wraps each step in
 * a scope, so a long decode does not grow native memory. Who
 * owns what (the weights, returned tensors, caches, traces) is stated once, in the
 * {@linkplain dev.relat.engine engine package's documentation} ("Native memory").
 */
public final class QwenModel {
    private final QwenConfig config;
    private final QwenWeights weights;
    private final Device device;
    private final ScalarType dtype;
    private final Tensor invFreq;
    private final boolean relatAttention;

    QwenModel(QwenWeights weights) {
        this.config = weights.config();
        this.weights = weights;
        this.device = weights.embedTokens().device();
        this.dtype = weights.embedTokens().scalar_type();
        try (PointerScope scope = new PointerScope()) {
            this.invFreq = Tensors.keep(inverseFrequencies(config, device));
        }
        this.relatAttention = config.headDim() == 64 || config.headDim() == 128;
    }

    /**
     * Opens a checkout directory, checks it (config, every safetensors header, every tensor's
     * presence, dtype and shape) before reading any data, and loads the weights onto the device in
     * the given dtype, one copy per tensor from the memory-mapped files. The model owns the weights
     * and has no close: they are freed when the model is unreachable.
     *
     * @param directory a Hugging Face Qwen2 / Qwen3 checkout: config.json and model.safetensors,
     *     or shards listed in model.safetensors.index.json
     * @param device where the weights live, e.g. {@code cpu}, {@code cuda:0}
     * @param dtype Float, BFloat16 or Half, converted while loading
     * @return the model
     * @throws CheckpointException when the checkout cannot be used (a missing, misshapen or
     *     non-finite tensor, an unsupported config); the message names the file and the tensor or
     *     field
     * @throws IllegalArgumentException when dtype is not a floating type the model runs in
     */
    public static QwenModel load(Path directory, Device device, ScalarType dtype) {
        CpuSettings.configure();
        try (QwenCheckpoint checkpoint = QwenCheckpoint.open(directory)) {
            return new QwenModel(checkpoint.load(device, dtype));
        }
    }

    /**
     * RoPE inverse frequencies exactly as Hugging Face computes them (fp32):
     * 1 / theta^(arange(0, D, 2) / D).
     */
    static Tensor inverseFrequencies(QwenConfig c, Device device) {
        Tensor exponents = torch.arange(new Scalar(0), new Scalar(c.headDim()), new Scalar(2),
                Tensors.options(ScalarType.Long, device)).to(ScalarType.Float).div(new Scalar((double) c.headDim()));
        return torch.pow(new Scalar(c.ropeTheta()), exponents).reciprocal();
    }

    /**
     * The architecture the model was loaded with.
     *
     * @return the checkout's config
     */
    public QwenConfig config() {
        return config;
    }

    /**
     * The weights, on {@link #device()} in {@link #dtype()}. They belong to the model: read them,
     * never write or close them.
     *
     * @return the weights
     */
    public QwenWeights weights() {
        return weights;
    }

    /**
     * The device of the weights; inputs must be on it.
     *
     * @return the device
     */
    public Device device() {
        return device;
    }

    /**
     * The dtype of the weights and of every activation; input embeddings must have it.
     *
     * @return Float, BFloat16 or Half
     */
    public ScalarType dtype() {
        return dtype;
    }

    /**
     * A KV cache for this model, on its device and dtype. The caller owns it: close it (or let
     * the garbage collector free it); its buffers survive any PointerScope.
     *
     * @param capacity the positions the cache can hold, at least 1
     * @return an empty cache: every layer's keys and values, [capacity, kv heads, head_dim] each
     * @throws IllegalArgumentException when capacity is below 1
     */
    public KvCache newCache(int capacity) {
        return new KvCache(config, capacity, device, dtype);
    }

    /**
     * Token ids as a tensor on the device, checked on the host first.
     *
     * @param ids token ids, each in [0, vocab_size)
     * @return a new int64 tensor [T] on {@link #device()}, in the caller's PointerScope
     * @throws IllegalArgumentException naming the first id out of range and its position
     */
    public Tensor ids(long[] ids) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i + " is outside [0, "
                        + config.vocabSize() + ")");
            }
        }
        Tensor t = Tensor.create(ids);
        return device.is_cpu() ? t : t.to(device, ScalarType.Long);
    }

    /**
     * Logits of every position of ids: the forward over them after what cache holds.
     *
     * @param cache the sequence so far; T positions are appended
     * @param ids the T new tokens
     * @return a new tensor [T, vocab] in the model dtype, in the caller's PointerScope
     */
    public Tensor logits(KvCache cache, long[] ids) {
        return lmHead(hidden(cache, embed(ids(ids)), null));
    }

    /**
     * Logits of the last position only: what prefill and decode steps need.
     *
     * @param cache the sequence so far; T positions are appended
     * @param ids the T new tokens (T at least 1)
     * @return a new tensor [1, vocab] in the model dtype, in the caller's PointerScope
     */
    public Tensor lastLogits(KvCache cache, long[] ids) {
        return lastLogits(cache, ids, null);
    }

    /**
     * Logits of the last position only, with an adapter's correction on its projections.
     *
     * @param cache the sequence so far; T positions are appended
     * @param ids the T new tokens (T at least 1)
     * @param adapter adds to the projections it targets; null for the base model
     * @return a new tensor [1, vocab] in the model dtype, in the caller's PointerScope
     */
    public Tensor lastLogits(KvCache cache, long[] ids, Adapter adapter) {
        return lastLogits(cache, ids(ids), adapter);
    }

    /**
     * Logits of the last position of token ids already on the model device (e.g. the id a decode
     * step sampled there), with an adapter's correction on its projections. The ids are not
     * range-checked: checking would read them back.
     *
     * @param cache the sequence so far; T positions are appended
     * @param ids int64 [T] (T at least 1) on the model device, each in [0, vocab_size)
     * @param adapter adds to the projections it targets; null for the base model
     * @return a new tensor [1, vocab] in the model dtype, in the caller's PointerScope
     */
    public Tensor lastLogits(KvCache cache, Tensor ids, Adapter adapter) {
        Tensor h = hidden(cache, embed(ids), null, adapter);
        return lmHead(h.narrow(0, h.size(0) - 1, 1));
    }

    /**
     * {@link #lastLogits(KvCache, Tensor, Adapter)} into preallocated buffers: the decode step.
     *
     * @param cache the sequence so far; T positions are appended
     * @param ids int64 [T] (T at least 1, at most buffers.rows()) on the model device, each in
     *     [0, vocab_size)
     * @param adapter adds to the projections it targets; null for the base model
     * @param buffers from {@link #newBuffers} of this model
     * @return [1, vocab] in the model dtype: a view of buffers, valid until their next forward; do
     *     not close it
     */
    public Tensor lastLogits(KvCache cache, Tensor ids, Adapter adapter, ForwardBuffers buffers) {
        Tensor embeds = embed(ids);
        checkEmbeds(embeds);
        Tensor h = hidden(List.of(cache), new int[] {(int) embeds.size(0)}, embeds, adapter, buffers);
        return lmHead(h.narrow(0, h.size(0) - 1, 1), buffers);
    }

    /**
     * {@link #hidden(KvCache, Tensor, ForwardTrace, Adapter)} without an adapter.
     *
     * @param cache the sequence so far; T positions are appended
     * @param inputEmbeds [T, hidden] in the model dtype on the model device
     * @param trace records the activations for a backward; null for none
     * @return the final hidden states [T, hidden], a new tensor in the caller's PointerScope
     */
    public Tensor hidden(KvCache cache, Tensor inputEmbeds, ForwardTrace trace) {
        return hidden(cache, inputEmbeds, trace, null);
    }

    /**
     * Runs the decoder over T new positions given as input embeddings [T, hidden] (model dtype,
     * model device), appends them to the cache, and returns the final hidden states h [T, hidden]
     * (after the final RMSNorm). When trace is not null it records the activations (and then the
     * head dimension must be one relat's attention kernel takes: 64 or 128). The adapter, when not
     * null, adds its correction to every projection it targets.
     *
     * @param cache the sequence so far; T positions are appended at its length
     * @param inputEmbeds [T, hidden], T at least 1, in the model dtype on the model device (token
     *     embeddings from {@link #embed(long[])}, or latent embeddings)
     * @param trace an unused trace to record this forward's activations into; null for none
     * @param adapter adds to the projections it targets; null for the base model
     * @return the final hidden states [T, hidden] (after the final RMSNorm), a new tensor in the
     *     caller's PointerScope
     * @throws IllegalArgumentException when inputEmbeds has the wrong shape, dtype or device, or a
     *     trace is asked for with a head_dim other than 64 or 128
     * @throws IllegalStateException when the cache has no room for T more positions, or the trace
     *     already recorded a forward
     */
    public Tensor hidden(KvCache cache, Tensor inputEmbeds, ForwardTrace trace, Adapter adapter) {
        checkEmbeds(inputEmbeds);
        return hidden(List.of(cache), new int[] {(int) inputEmbeds.size(0)}, inputEmbeds, trace, adapter);
    }

    /**
     * The batched forward: several sequences, each with its own cache, advance together. Their new
     * positions are the rows of inputEmbeds back to back (rows[0] of the first sequence, then
     * rows[1] of the second, ...); every row-wise step and every projection runs once over all of
     * them, attention runs per sequence over its own cache, and the adapter sees which rows are
     * whose ({@link Sequences}). Each sequence's result is what {@link #hidden(KvCache, Tensor,
     * ForwardTrace, Adapter)} gives it alone, up to the rounding of the shared projections.
     *
     * @param caches one cache per sequence, all different; rows[b] positions are appended to caches[b]
     * @param rows new positions of each sequence, each at least 1
     * @param inputEmbeds [sum of rows, hidden] in the model dtype on the model device
     * @param trace an unused trace to record this forward's activations (and its sequences) into;
     *     null for none
     * @param adapter adds to the projections it targets, per sequence; null for the base model
     * @return the final hidden states [sum of rows, hidden], a new tensor in the caller's PointerScope
     * @throws IllegalArgumentException when inputEmbeds has the wrong shape, dtype or device, the
     *     row counts do not add up to its rows, a cache appears twice, or a trace is asked for with a
     *     head_dim other than 64 or 128
     * @throws IllegalStateException when a cache has no room for its new positions, or the trace
     *     already recorded a forward
     */
    public Tensor hidden(List<KvCache> caches, int[] rows, Tensor inputEmbeds, ForwardTrace trace, Adapter adapter) {
        return forward(caches, rows, inputEmbeds, trace, adapter, null);
    }

    /**
     * The untraced batched forward into preallocated buffers (decode steps): as
     * {@link #hidden(List, int[], Tensor, ForwardTrace, Adapter)} without a trace, with every
     * activation written into buffers instead of fresh tensors. The result is the same.
     *
     * @param caches one cache per sequence, all different; rows[b] positions are appended to caches[b]
     * @param rows new positions of each sequence, each at least 1, adding up to at most buffers.rows()
     * @param inputEmbeds [sum of rows, hidden] in the model dtype on the model device
     * @param adapter adds to the projections it targets, per sequence; null for the base model
     * @param buffers from {@link #newBuffers} of this model
     * @return the final hidden states [sum of rows, hidden]: a view of buffers, valid until their
     *     next forward; do not close it
     * @throws IllegalArgumentException as the traced form does, or when the rows exceed the buffers'
     * @throws IllegalStateException when a cache has no room for its new positions
     */
    public Tensor hidden(List<KvCache> caches, int[] rows, Tensor inputEmbeds, Adapter adapter,
            ForwardBuffers buffers) {
        if (buffers == null) throw new IllegalArgumentException("buffers must not be null");
        return forward(caches, rows, inputEmbeds, null, adapter, buffers);
    }

    /**
     * Buffers for untraced forwards of up to rows rows ({@link ForwardBuffers}): one set per
     * decoding question or batch, about (10 hidden + 3 intermediate + vocab) values per row in the
     * model dtype. The caller owns them: close them (or let the garbage collector free them).
     *
     * @param rows the most rows one forward through them will have, at least 1
     * @return new buffers on the model device, in the model dtype
     * @throws IllegalArgumentException when rows is below 1
     */
    public ForwardBuffers newBuffers(int rows) {
        return new ForwardBuffers(config, rows, device, dtype, relatAttention);
    }

    private Tensor forward(List<KvCache> caches, int[] rows, Tensor inputEmbeds, ForwardTrace trace, Adapter adapter,
            ForwardBuffers buffers) {
        checkEmbeds(inputEmbeds);
        long total = 0;
        for (int r : rows) total += r;
        if (total != inputEmbeds.size(0)) {
            throw new IllegalArgumentException("the sequences' rows add up to " + total + " but the input embeddings have "
                    + inputEmbeds.size(0));
        }
        if (buffers != null && total > buffers.rows()) {
            throw new IllegalArgumentException("the forward has " + total + " rows; its buffers hold " + buffers.rows());
        }
        if (trace != null && !relatAttention) {
            throw new IllegalArgumentException("recording a trace (for the backward) needs head_dim 64 or 128 "
                    + "(relat's attention kernel); this model has head_dim " + config.headDim());
        }
        for (int b = 0; b < caches.size(); b++) {
            for (int c = 0; c < b; c++) {
                if (caches.get(b) == caches.get(c)) {
                    throw new IllegalArgumentException("sequences " + c + " and " + b + " share one cache");
                }
            }
            if (b < rows.length && rows[b] > 0) caches.get(b).requireRoom(rows[b]);
        }
        Sequences sequences = new Sequences(caches, rows, device);
        boolean traced = false;
        try {
            if (trace != null) {
                trace.begin(sequences);
                traced = true;
            }
            Tensor h = layers(sequences, inputEmbeds, trace, adapter, buffers);
            for (int b = 0; b < sequences.count(); b++) sequences.cache(b).advance(sequences.rows(b));
            return h;
        } finally {
            if (!traced) sequences.close();
        }
    }

    private void checkEmbeds(Tensor inputEmbeds) {
        if (inputEmbeds.dim() != 2 || inputEmbeds.size(1) != config.hiddenSize()) {
            throw new IllegalArgumentException("input embeddings must be [T, " + config.hiddenSize() + "], got "
                    + Arrays.toString(Tensors.shape(inputEmbeds)));
        }
        if (inputEmbeds.scalar_type().value != dtype.value) {
            throw new IllegalArgumentException("input embeddings have dtype " + inputEmbeds.scalar_type()
                    + "; the model runs in " + dtype);
        }
        if (!inputEmbeds.device().str().getString().equals(device.str().getString())) {
            throw new IllegalArgumentException("input embeddings are on " + inputEmbeds.device().str().getString()
                    + "; the model is on " + device.str().getString());
        }
        if (inputEmbeds.size(0) < 1) throw new IllegalArgumentException("input embeddings hold no positions");
    }

    /**
     * Every decoder layer and the final norm over the batch's rows; the caches are advanced by the
     * caller. With buffers (untraced only) every activation goes into them; without, each is a
     * fresh tensor (a trace keeps them). Both run the same kernels, so their results are equal.
     */
    private Tensor layers(Sequences sequences, Tensor inputEmbeds, ForwardTrace trace, Adapter adapter,
            ForwardBuffers buffers) {
        int t = sequences.totalRows();
        int hq = config.numAttentionHeads();
        int hkv = config.numKeyValueHeads();
        int hd = config.headDim();
        long nq = (long) hq * hd;
        long nkv = (long) hkv * hd;
        long inter = config.intermediateSize();
        Tensor x = inputEmbeds.contiguous();
        PointerScope outer = PointerScope.getInnerScope();
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            try (PointerScope layerScope = new PointerScope()) {
                LayerWeights w = weights.layers().get(i);
                Tensor inputRstd = trace == null ? null : rstdBuffer(t);
                Tensor xn = rmsNorm(x, w.inputNorm(), inputRstd, take(buffers, Slot.NORMED, t));
                Tensor qkv = projectQkv(xn, w, take(buffers, Slot.QKV, t));
                if (adapter != null) {
                    adapt(adapter, i, Projection.Q, xn, qkv.narrow(1, 0, nq), sequences);
                    adapt(adapter, i, Projection.K, xn, qkv.narrow(1, nq, nkv), sequences);
                    adapt(adapter, i, Projection.V, xn, qkv.narrow(1, nq + nkv, nkv), sequences);
                }
                Tensor q = qkv.narrow(1, 0, nq).view(t, hq, hd);
                Tensor k = qkv.narrow(1, nq, nkv).view(t, hkv, hd);
                Tensor v = qkv.narrow(1, nq + nkv, nkv).view(t, hkv, hd);
                Tensor qOut = buffers == null ? null : buffers.rows(Slot.Q, t).view(t, hq, hd);
                Tensor kOut = buffers == null ? null : buffers.rows(Slot.K, t).view(t, hkv, hd);
                Tensor qRaw = null;
                Tensor kRaw = null;
                Tensor qRstd = null;
                Tensor kRstd = null;
                if (config.qkNorm()) {
                    qRaw = q;
                    kRaw = k;
                    qRstd = trace == null ? null : rstdBuffer((long) t * hq);
                    kRstd = trace == null ? null : rstdBuffer((long) t * hkv);
                    q = qkNorm(q, w.qNorm(), qRstd, qOut);
                    k = qkNorm(k, w.kNorm(), kRstd, kOut);
                }
                Tensor attention;
                Tensor lse = null;
                if (relatAttention) {
                    if (buffers == null) {
                        Tensor[] rotated = Rope.forward(q.contiguous(), k.contiguous(), sequences.positions(), invFreq);
                        q = rotated[0];
                        k = rotated[1];
                    } else {
                        if (!config.qkNorm()) { // RoPE writes in place; q and k are still views of q|k|v
                            qOut.copy_(q);
                            kOut.copy_(k);
                        }
                        Rope.forward(qOut, kOut, sequences.positions(), invFreq, qOut, kOut);
                        q = qOut;
                        k = kOut;
                    }
                    Tensor out = buffers == null ? torch.empty_like(q) : buffers.rows(Slot.ATTENTION, t).view(t, hq, hd);
                    lse = buffers == null ? Tensors.empty(Tensors.options(ScalarType.Float, device), t, hq)
                            : buffers.rows(Slot.LSE, t);
                    for (int b = 0; b < sequences.count(); b++) {
                        int from = sequences.offset(b);
                        int n = sequences.rows(b);
                        int start = sequences.start(b);
                        KvCache cache = sequences.cache(b);
                        cache.write(i, start, k.narrow(0, from, n), v.narrow(0, from, n));
                        Tensor keys = cache.keys(i, start + n);
                        Tensor values = cache.values(i, start + n);
                        if (trace == null && n == 1) {
                            // one query over the cache: the split (flash-decoding) kernel, no lse needed
                            DecodeAttention.forward(q.narrow(0, from, 1), keys, values, null, start + 1,
                                    Attention.defaultScale(hd), out.narrow(0, from, 1),
                                    buffers == null ? null : buffers.decodeWorkspace());
                        } else {
                            Attention.forward(q.narrow(0, from, n), keys, values, Attention.defaultScale(hd),
                                    out.narrow(0, from, n), lse.narrow(0, from, n));
                        }
                    }
                    attention = out.view(t, nq);
                } else {
                    TensorVector parts = new TensorVector();
                    for (int b = 0; b < sequences.count(); b++) {
                        int from = sequences.offset(b);
                        int n = sequences.rows(b);
                        int start = sequences.start(b);
                        KvCache cache = sequences.cache(b);
                        RopeTables tables = ropeTables(start, n);
                        Tensor kb = rope(k.narrow(0, from, n), tables);
                        cache.write(i, start, kb, v.narrow(0, from, n));
                        parts.push_back(attention(rope(q.narrow(0, from, n), tables), cache.keys(i, start + n),
                                cache.values(i, start + n), start));
                    }
                    attention = sequences.count() == 1 ? parts.get(0) : torch.cat(parts, 0);
                }
                Tensor attnOut = project(attention, w.o(), take(buffers, Slot.PROJECTED, t));
                if (adapter != null) adapt(adapter, i, Projection.O, attention, attnOut, sequences);
                Tensor mid = add(x, attnOut, take(buffers, Slot.MID, t));
                Tensor midRstd = trace == null ? null : rstdBuffer(t);
                Tensor midNormed = rmsNorm(mid, w.postNorm(), midRstd, take(buffers, Slot.MID_NORMED, t));
                Tensor gateUp = project(midNormed, w.gateUp(), take(buffers, Slot.GATE_UP, t));
                if (adapter != null) {
                    adapt(adapter, i, Projection.GATE, midNormed, gateUp.narrow(1, 0, inter), sequences);
                    adapt(adapter, i, Projection.UP, midNormed, gateUp.narrow(1, inter, inter), sequences);
                }
                Tensor activated = swiglu(gateUp, take(buffers, Slot.ACTIVATED, t));
                Tensor down = project(activated, w.down(), take(buffers, Slot.PROJECTED, t));
                if (adapter != null) adapt(adapter, i, Projection.DOWN, activated, down, sequences);
                Tensor out = add(mid, down, take(buffers, Slot.RESIDUAL, t));
                if (trace != null) {
                    trace.add(new LayerActivations(x, inputRstd, xn, qRaw, kRaw, qRstd, kRstd, q, k, v, attention, lse,
                            mid, midRstd, midNormed, gateUp, activated));
                }
                x = buffers == null ? Scopes.escape(out, outer) : out;
            }
        }
        Tensor finalRstd = trace == null ? null : rstdBuffer(t);
        Tensor h = rmsNorm(x, weights.norm(), finalRstd, take(buffers, Slot.FINAL, t));
        if (trace != null) trace.finish(x, finalRstd, h);
        return h;
    }

    /** The slot's first t rows, or null (the step allocates its output) without buffers. */
    private static Tensor take(ForwardBuffers buffers, Slot slot, int t) {
        return buffers == null ? null : buffers.rows(slot, t);
    }

    /** a + b, into out when given. */
    private static Tensor add(Tensor a, Tensor b, Tensor out) {
        return out == null ? a.add(b) : torch.add_out(out, a, b);
    }

    /** x w^T, into out when given. */
    private static Tensor project(Tensor x, Tensor w, Tensor out) {
        if (out == null) return FrozenLinear.forward(x, w);
        FrozenLinear.forward(x, w, out);
        return out;
    }

    private static void adapt(Adapter adapter, int layer, Projection p, Tensor x, Tensor y, Sequences sequences) {
        if (adapter.targets(layer, p)) adapter.addTo(layer, p, x, y, sequences);
    }

    /**
     * Positions of a chunk, as RoPE and the backward take them.
     *
     * @param start the first position
     * @param t the positions in the chunk
     * @return a new int64 tensor [t] holding start .. start + t - 1 on the model device
     */
    public Tensor positions(int start, int t) {
        return torch.arange(new Scalar(start), new Scalar(start + t), Tensors.options(ScalarType.Long, device));
    }

    /**
     * RoPE's inverse frequencies, 1 / rope_theta^(2i / head_dim), as Hugging Face computes them.
     *
     * @return the model's own fp32 tensor [head_dim / 2] on its device: read it, never close it
     */
    public Tensor invFreq() {
        return invFreq;
    }

    /**
     * Whether attention and RoPE run relat's kernels, which a trace (and so the engine) needs.
     *
     * @return true when head_dim is 64 or 128; false means libtorch's attention, no trace
     */
    public boolean relatAttention() {
        return relatAttention;
    }

    // ---- the pieces, one method each ----

    /**
     * Rows of the embedding matrix.
     *
     * @param ids int64 token ids [T] on the model device (see {@link #ids})
     * @return a new tensor [T, hidden] in the model dtype, in the caller's PointerScope
     */
    public Tensor embed(Tensor ids) {
        return torch.embedding(weights.embedTokens(), ids);
    }

    /**
     * Embeddings of host token ids.
     *
     * @param ids token ids, each in [0, vocab_size)
     * @return a new tensor [T, hidden] in the model dtype, in the caller's PointerScope
     */
    public Tensor embed(long[] ids) {
        return embed(ids(ids));
    }

    /**
     * The LM head.
     *
     * @param hidden final hidden states [T, hidden] from {@link #hidden}
     * @return new logits [T, vocab] in the model dtype, in the caller's PointerScope
     */
    public Tensor lmHead(Tensor hidden) {
        return FrozenLinear.forward(hidden, weights.lmHead());
    }

    /**
     * The LM head into preallocated buffers.
     *
     * @param hidden final hidden states [T, hidden], T at most buffers.rows()
     * @param buffers from {@link #newBuffers} of this model
     * @return logits [T, vocab] in the model dtype: a view of buffers, valid until their next
     *     forward; do not close it
     */
    public Tensor lmHead(Tensor hidden, ForwardBuffers buffers) {
        return project(hidden, weights.lmHead(), buffers.rows(Slot.LOGITS, (int) hidden.size(0)));
    }

    /**
     * RMSNorm over the last dimension with relat's kernel; rstd (fp32, one per row) may be null;
     * into y when given (contiguous, x's shape), else into a new tensor.
     */
    Tensor rmsNorm(Tensor x, Tensor weight, Tensor rstd, Tensor y) {
        Tensor out = y == null ? torch.empty_like(x) : y;
        RmsNorm.forward(x, weight, config.rmsNormEps(), out, rstd);
        return out;
    }

    /** The fused q|k|v projection (with bias for qwen2): [T, (Hq + 2 Hkv) * D], into out when given. */
    Tensor projectQkv(Tensor x, LayerWeights w, Tensor out) {
        Tensor bias = w.qkvBias();
        if (out == null && bias != null && !FrozenLinear.fewRows(x)) {
            return torch.linear(x, w.qkv(), new TensorOptional(bias));
        }
        Tensor qkv = project(x, w.qkv(), out);
        return bias == null ? qkv : qkv.add_(bias);
    }

    /**
     * Qwen3 QK-norm: RMSNorm of every head row [T, H, D] with weight [D] (relat's kernel); into y
     * (contiguous [T, H, D]) when given: x is copied there and normalised in place.
     */
    Tensor qkNorm(Tensor x, Tensor weight, Tensor rstd, Tensor y) {
        if (y == null) return rmsNorm(x.contiguous(), weight, rstd, null);
        y.copy_(x);
        return rmsNorm(y, weight, rstd, y);
    }

    /** cos and sin [T, D] (fp32) for positions start .. start + T - 1. */
    record RopeTables(Tensor cos, Tensor sin) {}

    RopeTables ropeTables(int start, int t) {
        Tensor positions = torch.arange(new Scalar(start), new Scalar(start + t), Tensors.options(ScalarType.Float,
                device));
        Tensor freqs = torch.outer(positions, invFreq);
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), -1);
        return new RopeTables(emb.cos().unsqueeze(1), emb.sin().unsqueeze(1));
    }

    /** RoPE, rotate-half convention, on [T, H, D], computed in fp32; returns a new tensor in x's dtype. */
    Tensor rope(Tensor x, RopeTables r) {
        long half = x.size(2) / 2;
        Tensor xf = x.to(ScalarType.Float);
        Tensor x1 = xf.narrow(2, 0, half);
        Tensor x2 = xf.narrow(2, half, half);
        Tensor rotated = torch.cat(new TensorVector(x2.neg(), x1), -1);
        return xf.mul(r.cos()).add(rotated.mul(r.sin())).to(x.scalar_type());
    }

    /**
     * Grouped-query causal attention of q [T, Hq, D] (positions start .. start + T - 1) over
     * keys / values [S, Hkv, D] (positions 0 .. S - 1, S = start + T), scale 1/sqrt(D). Returns
     * [T, Hq * D].
     */
    Tensor attention(Tensor q, Tensor keys, Tensor values, int start) {
        long t = q.size(0);
        long s = keys.size(0);
        Tensor qh = q.transpose(0, 1).unsqueeze(0);
        Tensor kh = keys.transpose(0, 1).unsqueeze(0);
        Tensor vh = values.transpose(0, 1).unsqueeze(0);
        TensorOptional mask = new TensorOptional();
        boolean causal = false;
        if (t > 1 && start == 0) {
            causal = true;
        } else if (t > 1) {
            Tensor key = torch.arange(new Scalar(0), new Scalar(s), Tensors.options(ScalarType.Long, device));
            Tensor last = torch.arange(new Scalar(start), new Scalar(start + t), Tensors.options(ScalarType.Long, device));
            mask = new TensorOptional(key.unsqueeze(0).le(last.unsqueeze(1)));
        }
        Tensor out = torch.scaled_dot_product_attention(qh, kh, vh, mask, 0.0, causal,
                new DoubleOptional(1.0 / Math.sqrt(q.size(2))), true);
        return out.squeeze(0).transpose(0, 1).reshape(t, q.size(1) * q.size(2));
    }

    /** SwiGLU on the fused [gate | up] projection [T, 2 I]: silu(gate) * up, [T, I], into out when given. */
    Tensor swiglu(Tensor gateUp, Tensor out) {
        if (out == null) return SwiGlu.forwardFused(gateUp);
        SwiGlu.forwardFused(gateUp, out);
        return out;
    }

    private Tensor rstdBuffer(long rows) {
        return Tensors.empty(Tensors.options(ScalarType.Float, device), rows);
    }
}
