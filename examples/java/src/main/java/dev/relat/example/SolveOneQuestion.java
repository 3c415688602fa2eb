package dev.relat.example;

import dev.relat.engine.Engine;
import dev.relat.engine.Options;
import dev.relat.engine.Result;
import dev.relat.model.CheckpointWriter;
import dev.relat.model.QwenConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Writes a tiny Qwen3-architecture checkpoint with random weights (so the answer is noise), runs
 * ReLAT on one question and prints the reconstruction loss before each test-time update.
 * Argument: the checkpoint folder to write and keep (default: a temporary folder, deleted at the end).
 */
public final class SolveOneQuestion {
    public static void main(String[] args) throws IOException {
        boolean temporary = args.length == 0;
        Path checkout = temporary ? Files.createTempDirectory("relat-example-") : Path.of(args[0]);
        // hidden 128, intermediate 256, 2 layers, 2 query heads / 1 KV head of dimension 64 (the
        // engine's attention takes 64 or 128), the real vocabulary, tied embeddings, fp32
        QwenConfig config = CheckpointWriter.config("qwen3", 128, 256, 2, 2, 1, 64, CheckpointWriter.QWEN_VOCAB, true,
                "float32");
        Options options = Options.builder().latentSteps(4).updateSteps(3).learningRate(1e-3).maxNewTokens(8).build();

        // Every libtorch tensor made inside the scope is freed when it closes; the engine owns the
        // model's weights until it is closed.
        try (PointerScope scope = new PointerScope()) {
            CheckpointWriter.writeRandom(checkout, config, 42, 1);
            try (Engine engine = Engine.open(checkout, new Device("cpu"), ScalarType.Float)) {
                Result result = engine.solve("What is 2+3?", options);
                List<Double> losses = result.losses();
                System.out.println("checkpoint  " + checkout);
                System.out.printf("tokens      prompt %d, latent %d, answer %d%n", result.promptTokens(),
                        result.latentTokens(), result.answerTokens());
                for (int i = 0; i < losses.size(); i++) {
                    System.out.printf("loss        step %d  %.6f%n", i, losses.get(i));
                }
                System.out.println("answer      (random weights: noise) " + result.answer().strip());
            }
        } finally {
            if (temporary) deleteTree(checkout);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
