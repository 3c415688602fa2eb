package dev.relat.cli;

import dev.relat.model.CheckpointWriter;
import dev.relat.model.QwenConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The embedded demo model: a small Qwen3-architecture checkpoint with the real Qwen3 tokenizer and
 * <b>random</b> weights, written deterministically on first use into the cache folder
 * ({@code $RELAT_CACHE_DIR}, else {@code ${XDG_CACHE_HOME:-~/.cache}/relat}) as
 * {@code demo-<hash>}, where the hash covers the config, the seed and the writer's format, so a
 * change to any of them writes a new folder. It is written into a temporary folder next to it and
 * renamed into place, so a half-written demo model is never seen, and two processes racing to
 * write it both end up with the same one.
 *
 * <p>Its answers are noise: it shows the mechanics (latent thought, reconstruction loss, LoRA
 * updates, phase timings), not reasoning.
 */
public final class DemoModel {
    /** Printed with every demo run. */
    public static final String NOTICE = "embedded demo model: its weights are RANDOM, so its answers are noise;"
            + " it shows the mechanics only (use --model DIR for a real Qwen checkout)";

    /**
     * qwen3, hidden 128, 2 layers, 2 query heads / 1 KV head of head_dim 64 (the attention
     * kernels' smallest), intermediate 256, the full Qwen vocabulary (the real tokenizer's ids),
     * tied embeddings, fp32: about 20 M parameters, 78 MB.
     */
    public static final QwenConfig CONFIG =
            CheckpointWriter.config("qwen3", 128, 256, 2, 2, 1, 64, CheckpointWriter.QWEN_VOCAB, true, "float32");
    public static final long SEED = 20240606L;
    /** Bump when CheckpointWriter's random weights or file layout change. */
    static final int FORMAT = 1;
    /** The cap on answer tokens when solve runs the demo and --max-new-tokens was not given. */
    public static final int DEFAULT_MAX_NEW_TOKENS = 64;

    private DemoModel() {}

    /** The cache folder: $RELAT_CACHE_DIR, else $XDG_CACHE_HOME/relat, else ~/.cache/relat. */
    public static Path cacheRoot(Map<String, String> env) {
        String own = env.get("RELAT_CACHE_DIR");
        if (own != null && !own.isBlank()) return Path.of(own);
        String xdg = env.get("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("relat");
    }

    /** demo-&lt;first 12 hex digits of sha256(config, seed, format)&gt;. */
    public static String folderName() {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update((CONFIG.toJson() + "\nseed=" + SEED + "\nformat=" + FORMAT).getBytes(StandardCharsets.UTF_8));
            return "demo-" + HexFormat.of().formatHex(sha.digest()).substring(0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The demo checkpoint under cacheRoot, written first if it is not there. */
    public static Path ensure(Path cacheRoot) {
        Path target = cacheRoot.resolve(folderName());
        if (Files.isDirectory(target)) return target;
        try {
            Files.createDirectories(cacheRoot);
            Path tmp = Files.createTempDirectory(cacheRoot, "." + folderName() + ".tmp-");
            try {
                CheckpointWriter.writeRandom(tmp, CONFIG, SEED, 1);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException e) {
                    // another process that finished first leaves an identical copy; anything else fails
                    if (!Files.isDirectory(target)) {
                        throw new IOException("cannot rename " + tmp + " to " + target + ": " + e, e);
                    }
                }
            } finally {
                delete(tmp);
            }
            if (!Files.isDirectory(target)) throw new IOException("demo model folder " + target + " did not appear");
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the demo model into " + cacheRoot + ": " + e.getMessage(), e);
        }
    }

    private static void delete(Path root) throws IOException {
        if (!Files.exists(root)) return;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
