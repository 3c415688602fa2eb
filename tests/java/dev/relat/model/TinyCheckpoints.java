package dev.relat.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The tiny random checkpoints the model tests share, written once per JVM into a temporary
 * folder (removed at exit). Widths are deliberately awkward (not multiples of 8 / 32 / 128).
 */
final class TinyCheckpoints {
    private static final Path ROOT;
    private static final Map<String, Path> WRITTEN = new HashMap<>();

    static {
        try {
            ROOT = Files.createTempDirectory("relat-tiny-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(ROOT)));
    }

    private TinyCheckpoints() {}

    /** qwen3: hidden 72, intermediate 100, 3 layers, 6 query / 2 kv heads (GQA 3), head_dim 12, untied. */
    static QwenConfig qwen3(String dtype) {
        return CheckpointWriter.config("qwen3", 72, 100, 3, 6, 2, 12, 517, false, dtype);
    }

    /** qwen3, tied embeddings, 4 query / 4 kv heads (no grouping), head_dim 16. */
    static QwenConfig qwen3Tied(String dtype) {
        return CheckpointWriter.config("qwen3", 40, 56, 2, 4, 4, 16, 389, true, dtype);
    }

    /** qwen2 with q/k/v biases: hidden 64, 4 query / 2 kv heads, head_dim 16 (derived), untied. */
    static QwenConfig qwen2(String dtype) {
        return CheckpointWriter.config("qwen2", 64, 120, 3, 4, 2, 16, 300, false, dtype);
    }

    /** qwen2 with biases and tied embeddings, 8 query / 1 kv head (GQA 8), head_dim 6. */
    static QwenConfig qwen2Tied(String dtype) {
        return CheckpointWriter.config("qwen2", 48, 72, 2, 8, 1, 6, 450, true, dtype);
    }

    /** qwen3 with head_dim 64 (relat's attention kernel and the trace path): 4 query / 1 kv head (GQA 4). */
    static QwenConfig qwen3Kernel(String dtype) {
        return CheckpointWriter.config("qwen3", 72, 100, 3, 4, 1, 64, 517, false, dtype);
    }

    /** qwen2 with biases, tied, head_dim 64 (hidden 128 over 2 heads), 2 query / 2 kv heads. */
    static QwenConfig qwen2Kernel(String dtype) {
        return CheckpointWriter.config("qwen2", 128, 120, 2, 2, 2, 64, 300, true, dtype);
    }

    /** Writes (once) a random checkpoint for config and seed; shards > 1 writes an index. */
    static synchronized Path get(String name, QwenConfig config, long seed, int shards) {
        String key = name + "-" + config.modelType() + "-" + config.hiddenSize() + "x" + config.headDim() + "x"
                + config.numHiddenLayers() + "-" + config.torchDtype() + "-" + seed + "-" + shards;
        return WRITTEN.computeIfAbsent(key, k -> CheckpointWriter.writeRandom(ROOT.resolve(k), config, seed, shards));
    }

    /** A fresh directory under the shared temporary root. */
    static Path freshDir(String name) {
        try {
            return Files.createTempDirectory(ROOT, name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void delete(Path root) {
        if (!Files.exists(root)) return;
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // best effort at exit
        }
    }
}
