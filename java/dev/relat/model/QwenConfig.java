package dev.relat.model;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.relat.IoErrors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The architecture fields of a Hugging Face config.json for the Qwen families relat runs:
 * {@code qwen2} (Qwen1.5 / 2 / 2.5: q/k/v projections with bias, no QK-norm) and {@code qwen3}
 * (no bias, per-head RMSNorm on q and k). head_dim is read when present, else hidden / heads.
 * Each component is the config.json field of the same name in snake_case.
 *
 * @param modelType "qwen2" or "qwen3"
 * @param hiddenSize d, the width of the residual stream
 * @param intermediateSize I, the MLP's inner width
 * @param numHiddenLayers the decoder layers
 * @param numAttentionHeads Hq, the query heads
 * @param numKeyValueHeads Hkv, the key / value heads (Hq is a multiple of it)
 * @param headDim D, the width of one head (even)
 * @param rmsNormEps the epsilon of every RMSNorm (default 1e-6)
 * @param ropeTheta RoPE's base (default 10000)
 * @param vocabSize the rows of the embedding matrix and the LM head
 * @param tieWordEmbeddings whether the LM head is the embedding matrix
 * @param torchDtype the checkpoint's dtype name ("bfloat16", "float16", "float32")
 * @param maxPositionEmbeddings the context limit (default 32768)
 * @param bosTokenId null when the config has none
 * @param eosTokenIds one or more end-of-sequence ids (config.json allows an int or a list)
 */
public record QwenConfig(
        String modelType,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        double rmsNormEps,
        double ropeTheta,
        int vocabSize,
        boolean tieWordEmbeddings,
        String torchDtype,
        int maxPositionEmbeddings,
        Long bosTokenId,
        List<Long> eosTokenIds) {

    /**
     * Copies eosTokenIds. Checks nothing else: {@link #read} and {@link #parse} check a file's
     * fields.
     *
     * @param modelType "qwen2" or "qwen3"
     * @param hiddenSize d
     * @param intermediateSize I
     * @param numHiddenLayers the decoder layers
     * @param numAttentionHeads Hq
     * @param numKeyValueHeads Hkv
     * @param headDim D
     * @param rmsNormEps the RMSNorm epsilon
     * @param ropeTheta RoPE's base
     * @param vocabSize the vocabulary rows
     * @param tieWordEmbeddings whether the LM head is the embedding matrix
     * @param torchDtype "bfloat16", "float16" or "float32"
     * @param maxPositionEmbeddings the context limit
     * @param bosTokenId may be null
     * @param eosTokenIds not null (may be empty)
     */
    public QwenConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /**
     * Whether the q/k/v projections carry a bias.
     *
     * @return true for qwen2
     */
    public boolean qkvBias() {
        return modelType.equals("qwen2");
    }

    /**
     * Whether q and k get a per-head RMSNorm before RoPE.
     *
     * @return true for qwen3
     */
    public boolean qkNorm() {
        return modelType.equals("qwen3");
    }

    /**
     * Query heads per key/value head (grouped-query attention).
     *
     * @return Hq / Hkv
     */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /**
     * Rows of the fused q|k|v projection ({@link LayerWeights#qkv()}).
     *
     * @return (Hq + 2 Hkv) * D
     */
    public int qkvRows() {
        return (numAttentionHeads + 2 * numKeyValueHeads) * headDim;
    }

    /**
     * The checkpoint's dtype as a libtorch scalar type.
     *
     * @return BFloat16, Half or Float
     * @throws IllegalStateException when torchDtype is none of the three names
     */
    public ScalarType scalarType() {
        return switch (torchDtype) {
            case "bfloat16" -> ScalarType.BFloat16;
            case "float16" -> ScalarType.Half;
            case "float32" -> ScalarType.Float;
            default -> throw new IllegalStateException("unknown torch_dtype " + torchDtype);
        };
    }

    /**
     * The model's parameters.
     *
     * @return every weight's elements, the embedding and LM head counted once when tied
     */
    public long parameterCount() {
        long d = hiddenSize;
        long perLayer = d * qkvRows() + (long) numAttentionHeads * headDim * d + 3 * d * intermediateSize + 2 * d;
        if (qkvBias()) perLayer += qkvRows();
        if (qkNorm()) perLayer += 2L * headDim;
        long total = perLayer * numHiddenLayers + (long) vocabSize * d + d;
        if (!tieWordEmbeddings) total += (long) vocabSize * d;
        return total;
    }

    /**
     * Reads and checks config.json.
     *
     * @param configJson the file
     * @return the config
     * @throws CheckpointException when the file cannot be read, is not strict JSON, lacks a field
     *     or describes an architecture relat does not run (sliding window, rope_scaling, an
     *     activation other than silu, ...); the message names the file and the field
     */
    public static QwenConfig read(Path configJson) {
        String text;
        try {
            text = Files.readString(configJson, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CheckpointException(configJson + ": cannot read: " + IoErrors.reason(e), e);
        }
        return parse(text, configJson.toString());
    }

    /**
     * Parses and checks config.json text.
     *
     * @param json the text
     * @param file names the source in error messages
     * @return the config
     * @throws CheckpointException as for {@link #read}
     */
    public static QwenConfig parse(String json, String file) {
        JsonObject o = StrictJson.object(json, file);
        Fields f = new Fields(o, file);
        String type = f.string("model_type", null);
        if (!type.equals("qwen2") && !type.equals("qwen3")) {
            throw new CheckpointException(file + ": field 'model_type' is '" + type
                    + "'; supported: qwen2 (Qwen1.5/2/2.5), qwen3");
        }
        String act = f.string("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw new CheckpointException(file + ": field 'hidden_act' is '" + act + "'; only silu is supported");
        }
        if (o.has("rope_scaling") && !o.get("rope_scaling").isJsonNull()) {
            throw new CheckpointException(file + ": field 'rope_scaling' is set (" + o.get("rope_scaling")
                    + "); only plain RoPE is supported");
        }
        if (f.bool("use_sliding_window", false)) {
            throw new CheckpointException(file + ": field 'use_sliding_window' is true; sliding-window attention is"
                    + " not supported");
        }
        if (type.equals("qwen3") && f.bool("attention_bias", false)) {
            throw new CheckpointException(file + ": field 'attention_bias' is true; qwen3 with attention bias is not"
                    + " supported");
        }
        int hidden = f.positive("hidden_size");
        int heads = f.positive("num_attention_heads");
        int kvHeads = o.has("num_key_value_heads") && !o.get("num_key_value_heads").isJsonNull()
                ? f.positive("num_key_value_heads") : heads;
        if (heads % kvHeads != 0) {
            throw new CheckpointException(file + ": field 'num_attention_heads' (" + heads
                    + ") is not a multiple of 'num_key_value_heads' (" + kvHeads + ")");
        }
        int headDim;
        if (o.has("head_dim") && !o.get("head_dim").isJsonNull()) {
            headDim = f.positive("head_dim");
        } else if (type.equals("qwen3")) {
            throw new CheckpointException(file + ": field 'head_dim' is missing (qwen3 configs carry it)");
        } else {
            if (hidden % heads != 0) {
                throw new CheckpointException(file + ": field 'hidden_size' (" + hidden
                        + ") is not a multiple of 'num_attention_heads' (" + heads + ") and 'head_dim' is absent");
            }
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0) {
            throw new CheckpointException(file + ": field 'head_dim' is " + headDim + "; RoPE needs an even head_dim");
        }
        String dtype = o.has("torch_dtype") ? f.string("torch_dtype", "float32") : f.string("dtype", "float32");
        if (!List.of("bfloat16", "float16", "float32").contains(dtype)) {
            throw new CheckpointException(file + ": field 'torch_dtype' is '" + dtype
                    + "'; supported: bfloat16, float16, float32");
        }
        List<Long> eos = new ArrayList<>();
        JsonElement eosField = o.get("eos_token_id");
        if (eosField != null && eosField.isJsonArray()) {
            for (JsonElement x : eosField.getAsJsonArray()) eos.add(Fields.tokenId(x, file, "eos_token_id"));
        } else if (eosField != null && !eosField.isJsonNull()) {
            eos.add(Fields.tokenId(eosField, file, "eos_token_id"));
        }
        JsonElement bosField = o.get("bos_token_id");
        Long bos = bosField == null || bosField.isJsonNull() ? null : Fields.tokenId(bosField, file, "bos_token_id");
        return new QwenConfig(type, hidden, f.positive("intermediate_size"), f.positive("num_hidden_layers"), heads,
                kvHeads, headDim, f.positiveDouble("rms_norm_eps", 1e-6), f.positiveDouble("rope_theta", 10000.0),
                f.positive("vocab_size"), f.bool("tie_word_embeddings", false), dtype,
                o.has("max_position_embeddings") ? f.positive("max_position_embeddings") : 32768, bos, eos);
    }

    /**
     * config.json text in the Hugging Face layout (what {@link #parse} reads).
     *
     * @return pretty-printed JSON ending in a newline
     */
    public String toJson() {
        JsonObject o = new JsonObject();
        o.add("architectures", array(new JsonPrimitive(modelType.equals("qwen3") ? "Qwen3ForCausalLM"
                : "Qwen2ForCausalLM")));
        o.addProperty("model_type", modelType);
        o.addProperty("hidden_size", hiddenSize);
        o.addProperty("intermediate_size", intermediateSize);
        o.addProperty("num_hidden_layers", numHiddenLayers);
        o.addProperty("num_attention_heads", numAttentionHeads);
        o.addProperty("num_key_value_heads", numKeyValueHeads);
        if (modelType.equals("qwen3") || headDim != hiddenSize / numAttentionHeads) o.addProperty("head_dim", headDim);
        o.addProperty("hidden_act", "silu");
        o.addProperty("rms_norm_eps", rmsNormEps);
        o.addProperty("rope_theta", ropeTheta);
        o.add("rope_scaling", com.google.gson.JsonNull.INSTANCE);
        o.addProperty("vocab_size", vocabSize);
        o.addProperty("tie_word_embeddings", tieWordEmbeddings);
        o.addProperty("torch_dtype", torchDtype);
        o.addProperty("max_position_embeddings", maxPositionEmbeddings);
        if (modelType.equals("qwen3")) o.addProperty("attention_bias", false);
        o.addProperty("use_sliding_window", false);
        o.addProperty("attention_dropout", 0.0);
        if (bosTokenId != null) o.addProperty("bos_token_id", bosTokenId);
        if (eosTokenIds.size() == 1) {
            o.addProperty("eos_token_id", eosTokenIds.get(0));
        } else {
            JsonArray a = new JsonArray();
            eosTokenIds.forEach(a::add);
            o.add("eos_token_id", a);
        }
        return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(o) + "\n";
    }

    /** A copy with another dtype name. */
    QwenConfig withTorchDtype(String dtype) {
        return new QwenConfig(modelType, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, rmsNormEps, ropeTheta, vocabSize, tieWordEmbeddings, dtype,
                maxPositionEmbeddings, bosTokenId, eosTokenIds);
    }

    private static JsonArray array(JsonElement e) {
        JsonArray a = new JsonArray();
        a.add(e);
        return a;
    }

    /** Typed field access with errors naming the file and the field. */
    private record Fields(JsonObject o, String file) {
        JsonElement required(String name) {
            JsonElement e = o.get(name);
            if (e == null || e.isJsonNull()) throw new CheckpointException(file + ": field '" + name + "' is missing");
            return e;
        }

        int positive(String name) {
            JsonElement e = required(name);
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
                throw new CheckpointException(file + ": field '" + name + "' must be a positive integer, got " + e);
            }
            double v = e.getAsDouble();
            if (v != Math.floor(v) || v < 1 || v > Integer.MAX_VALUE) {
                throw new CheckpointException(file + ": field '" + name + "' must be a positive integer, got " + e);
            }
            return (int) v;
        }

        double positiveDouble(String name, double fallback) {
            JsonElement e = o.get(name);
            if (e == null || e.isJsonNull()) return fallback;
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber() || !(e.getAsDouble() > 0)) {
                throw new CheckpointException(file + ": field '" + name + "' must be a positive number, got " + e);
            }
            return e.getAsDouble();
        }

        boolean bool(String name, boolean fallback) {
            JsonElement e = o.get(name);
            if (e == null || e.isJsonNull()) return fallback;
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
                throw new CheckpointException(file + ": field '" + name + "' must be true or false, got " + e);
            }
            return e.getAsBoolean();
        }

        String string(String name, String fallback) {
            JsonElement e = o.get(name);
            if (e == null || e.isJsonNull()) {
                if (fallback == null) throw new CheckpointException(file + ": field '" + name + "' is missing");
                return fallback;
            }
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
                throw new CheckpointException(file + ": field '" + name + "' must be a string, got " + e);
            }
            return e.getAsString();
        }

        static long tokenId(JsonElement e, String file, String name) {
            // getAsDouble parses every JSON number; getAsLong throws on some ("1E-99999").
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber() || !(e.getAsDouble() >= 0)
                    || e.getAsDouble() != Math.floor(e.getAsDouble()) || e.getAsDouble() > Integer.MAX_VALUE) {
                throw new CheckpointException(file + ": field '" + name + "' must hold token ids, got " + e);
            }
            return (long) e.getAsDouble();
        }
    }
}
