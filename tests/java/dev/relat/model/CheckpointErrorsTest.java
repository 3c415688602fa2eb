package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

/**
 * Malformed checkpoints, one test each: every one fails in QwenCheckpoint.open with a
 * CheckpointException naming the file and the tensor or field.
 */
class CheckpointErrorsTest {
    static final QwenConfig CONFIG = TinyCheckpoints.qwen3Tied("float32");

    /** A copy of a valid tiny checkpoint to break. */
    static Path validCopy(String name) throws IOException {
        Path source = TinyCheckpoints.get("valid", CONFIG, 42, 1);
        Path dir = TinyCheckpoints.freshDir(name);
        try (Stream<Path> files = Files.list(source)) {
            for (Path p : files.toList()) Files.copy(p, dir.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        return dir;
    }

    static CheckpointException fails(Path dir) {
        return assertThrows(CheckpointException.class, () -> QwenCheckpoint.open(dir));
    }

    static void says(CheckpointException e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }

    static Map<String, Tensor> weights() {
        return CheckpointWriter.randomWeights(CONFIG, 42);
    }

    @Test
    void truncatedFile() throws IOException {
        Path dir = validCopy("truncated");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(f.length() - 100);
        }
        says(fails(dir), file.toString(), "tensor 'model.norm.weight'", "past the end of the file", "truncated");
    }

    @Test
    void headerOffsetsPastTheEnd() throws IOException {
        Path dir = validCopy("offsets");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        SafetensorsTest.raw(file, "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                + "\"data_offsets\":[64,80]}}", new byte[32]);
        says(fails(dir), file.toString(), "tensor 'model.embed_tokens.weight'", "data_offsets [64, 80]",
                "past the end of the file (the data section holds 32 bytes");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path dir = validCopy("overlap");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        SafetensorsTest.raw(file, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", new byte[16]);
        says(fails(dir), file.toString(), "tensors 'a' [0, 16) and 'b' [8, 16) overlap");
    }

    @Test
    void missingTensor() throws IOException {
        Path dir = validCopy("missing");
        Map<String, Tensor> w = new LinkedHashMap<>(weights());
        w.remove("model.layers.1.mlp.up_proj.weight");
        SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), w, Map.of());
        says(fails(dir), dir.resolve(QwenCheckpoint.SINGLE).toString(),
                "tensor 'model.layers.1.mlp.up_proj.weight' is missing");
    }

    @Test
    void wrongShape() throws IOException {
        Path dir = validCopy("shape");
        Map<String, Tensor> w = new LinkedHashMap<>(weights());
        w.put("model.layers.0.self_attn.k_proj.weight", torch.zeros(60, 40));
        SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), w, Map.of());
        says(fails(dir), dir.resolve(QwenCheckpoint.SINGLE).toString(),
                "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [60, 40]; config.json implies [64, 40]");
    }

    @Test
    void unknownDtype() throws IOException {
        Path dir = validCopy("dtype");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        SafetensorsTest.raw(file, "{\"model.norm.weight\":{\"dtype\":\"Q4_K\",\"shape\":[40],\"data_offsets\":[0,160]}}",
                new byte[160]);
        says(fails(dir), file.toString(), "tensor 'model.norm.weight': unknown dtype 'Q4_K'");
    }

    @Test
    void unsupportedModelType() throws IOException {
        Path dir = validCopy("type");
        Path config = dir.resolve(QwenCheckpoint.CONFIG);
        Files.writeString(config, Files.readString(config).replace("\"qwen3\"", "\"llama\""));
        says(fails(dir), config.toString(), "field 'model_type' is 'llama'", "qwen2", "qwen3");
    }

    @Test
    void headerLengthLargerThanTheFile() throws IOException {
        Path dir = validCopy("headerlength");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        byte[] bytes = Files.readAllBytes(file);
        long fake = bytes.length + 1;
        for (int i = 0; i < 8; i++) bytes[i] = (byte) (fake >>> (8 * i));
        Files.write(file, bytes);
        says(fails(dir), file.toString(), "header length " + fake + " is larger than the file (" + bytes.length);
    }

    // ---- more ways to be malformed ----

    @Test
    void fileShorterThanTheLengthField() throws IOException {
        Path dir = validCopy("tiny");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        Files.write(file, new byte[5]);
        says(fails(dir), file.toString(), "fewer than the 8-byte header length");
    }

    @Test
    void headerThatIsNotJson() throws IOException {
        Path dir = validCopy("json");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        SafetensorsTest.raw(file, "{\"a\": [", new byte[0]);
        says(fails(dir), file.toString(), "not valid JSON");
    }

    @Test
    void shapeThatDisagreesWithTheByteRange() throws IOException {
        Path dir = validCopy("bytes");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        SafetensorsTest.raw(file, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,3],\"data_offsets\":[0,16]}}", new byte[16]);
        says(fails(dir), file.toString(), "tensor 'w': shape [3, 3] of BF16 needs 18 bytes", "hold 16");
    }

    @Test
    void integerWeights() throws IOException {
        Path dir = validCopy("int");
        Map<String, Tensor> w = new LinkedHashMap<>(weights());
        w.put(QwenNames.NORM, torch.zeros(40).to(torch.ScalarType.Long));
        SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), w, Map.of());
        says(fails(dir), "tensor 'model.norm.weight' has dtype I64; weights must be F32, BF16 or F16");
    }

    @Test
    void indexNamingAMissingShard() throws IOException {
        Path dir = validCopy("index");
        Files.writeString(dir.resolve(QwenCheckpoint.INDEX), "{\"weight_map\": {\"model.norm.weight\": "
                + "\"model-00002-of-00002.safetensors\"}}", StandardCharsets.UTF_8);
        says(fails(dir), QwenCheckpoint.INDEX, "tensor 'model.norm.weight' is mapped to "
                + "'model-00002-of-00002.safetensors', which is not a file");
    }

    @Test
    void indexMissingATensor() throws IOException {
        Path dir = validCopy("indexmissing");
        Files.writeString(dir.resolve(QwenCheckpoint.INDEX), "{\"weight_map\": {\"model.norm.weight\": "
                + "\"model.safetensors\"}}", StandardCharsets.UTF_8);
        says(fails(dir), QwenCheckpoint.INDEX, "tensor 'model.embed_tokens.weight' is missing");
    }

    @Test
    void configErrorsNameTheField() throws IOException {
        Path dir = validCopy("config");
        Path config = dir.resolve(QwenCheckpoint.CONFIG);
        String valid = Files.readString(config);
        Files.writeString(config, valid.replaceAll("\"hidden_size\": \\d+,", ""));
        says(fails(dir), config.toString(), "field 'hidden_size' is missing");
        Files.writeString(config, valid.replaceAll("\"num_key_value_heads\": \\d+", "\"num_key_value_heads\": 3"));
        says(fails(dir), "'num_attention_heads' (4) is not a multiple of 'num_key_value_heads' (3)");
        Files.writeString(config, valid.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\"}"));
        says(fails(dir), "field 'rope_scaling' is set");
        Files.writeString(config, valid.replaceAll("\"head_dim\": \\d+,", ""));
        says(fails(dir), "field 'head_dim' is missing");
        Files.writeString(config, valid.replace("\"torch_dtype\": \"float32\"", "\"torch_dtype\": \"int8\""));
        says(fails(dir), "field 'torch_dtype' is 'int8'");
        Files.delete(config);
        says(fails(dir), config.toString(), "no such file");
    }

    // ---- disagreements that used to load silently ----

    @Test
    void aKeyTwiceInAHeaderIsRefused() throws IOException {
        Path dir = validCopy("twice");
        Path file = dir.resolve(QwenCheckpoint.SINGLE);
        SafetensorsTest.raw(file, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[8]);
        says(fails(dir), file.toString(), "key 'w' appears twice");
    }

    @Test
    void aKeyTwiceInConfigIsRefused() throws IOException {
        Path dir = validCopy("config-twice");
        Path config = dir.resolve(QwenCheckpoint.CONFIG);
        String valid = Files.readString(config);
        Files.writeString(config, valid.replaceFirst("\\{", "{\"hidden_size\": 8,"));
        says(fails(dir), config.toString(), "key 'hidden_size' appears twice");
        Files.writeString(config, valid.replaceFirst("\\{", "{\"x\": NaN,"));
        CheckpointException e = fails(dir);
        says(e, config.toString(), "not valid JSON");
        assertTrue(!e.getMessage().contains("setStrictness") && !e.getMessage().contains("https://"), e.getMessage());
    }

    @Test
    void aConfigWithFewerLayersThanTheCheckpointIsRefused() throws IOException {
        Path dir = validCopy("fewer-layers");
        Path config = dir.resolve(QwenCheckpoint.CONFIG);
        String valid = Files.readString(config);
        int layers = CONFIG.numHiddenLayers();
        Files.writeString(config, valid.replace("\"num_hidden_layers\": " + layers, "\"num_hidden_layers\": " + (layers - 1)));
        says(fails(dir), config.toString(), "'num_hidden_layers' is " + (layers - 1), "tensors of " + layers + " layer(s)");
    }

    @Test
    void anAbsurdLayerCountFailsAtOnce() throws IOException {
        Path dir = validCopy("many-layers");
        Path config = dir.resolve(QwenCheckpoint.CONFIG);
        String valid = Files.readString(config);
        Files.writeString(config, valid.replaceAll("\"num_hidden_layers\": \\d+", "\"num_hidden_layers\": 2147483647"));
        long start = System.nanoTime();
        says(fails(dir), "is missing", "'num_hidden_layers' 2147483647");
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "checked before anything is enumerated");
    }

    @Test
    void aWeightsFileThatIsNotAFileIsNamedAsSuch() throws IOException {
        Path dir = validCopy("not-a-file");
        Path single = dir.resolve(QwenCheckpoint.SINGLE);
        Files.delete(single);
        Files.createDirectory(single);
        says(fails(dir), single.toString(), "a directory, not a file");
        Files.delete(single);
        Files.createSymbolicLink(single, dir.resolve("gone.safetensors"));
        says(fails(dir), single.toString(), "a link to a missing file");
    }

    @Test
    void nonFiniteWeightsAreFoundAtLoad() throws IOException {
        Path dir = validCopy("nan");
        Map<String, Tensor> w = new LinkedHashMap<>(weights());
        Tensor poisoned = w.get("model.layers.1.mlp.down_proj.weight").clone();
        poisoned.view(-1).narrow(0, 7, 1).fill_(new Scalar(Double.NaN));
        w.put("model.layers.1.mlp.down_proj.weight", poisoned);
        SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), w, Map.of());
        try (QwenCheckpoint checkpoint = QwenCheckpoint.open(dir)) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> checkpoint.load(new Device("cpu")));
            says(e, dir.resolve(QwenCheckpoint.SINGLE).toString(),
                    "tensor 'model.layers.1.mlp.down_proj.weight' holds NaN or infinite values");
        }
        w.put("model.layers.1.mlp.down_proj.weight", weights().get("model.layers.1.mlp.down_proj.weight"));
        w.put("model.norm.weight", torch.full(new long[] {CONFIG.hiddenSize()}, new Scalar(Double.POSITIVE_INFINITY)));
        SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), w, Map.of());
        try (QwenCheckpoint checkpoint = QwenCheckpoint.open(dir)) {
            says(assertThrows(CheckpointException.class, () -> checkpoint.load(new Device("cpu"))),
                    "tensor 'model.norm.weight' holds NaN or infinite values");
        }
    }

    @Test
    void aTensorNobodyAsksForIsRefused() throws IOException {
        Path dir = validCopy("extra");
        Map<String, Tensor> w = new LinkedHashMap<>(weights());
        w.put("model.vision_tower.proj.weight", torch.zeros(4, 4));
        SafetensorsWriter.write(dir.resolve(QwenCheckpoint.SINGLE), w, Map.of());
        says(fails(dir), dir.resolve(QwenCheckpoint.SINGLE).toString(), "1 tensor(s) that the model of config.json"
                + " does not use, first 'model.vision_tower.proj.weight'");
    }
}

