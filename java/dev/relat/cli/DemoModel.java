package dev.relat.cli;

import dev.relat.IoErrors;
import dev.relat.model.CheckpointWriter;
import dev.relat.model.QwenConfig;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The embedded demo model: a small Qwen3-architecture checkpoint with the real Qwen3 tokenizer and
 * <b>random</b> weights, written deterministically on first use into the cache folder
 * ({@code $RELAT_CACHE_DIR}, else {@code ${XDG_CACHE_HOME:-~/.cache}/relat}) as
 * {@code demo-<hash>}, where the hash covers the config, the seed and the writer's format, so a
 * change to any of them writes a new folder. It is written into a temporary folder next to it and
 * renamed into place, so a half-written demo model is never seen, and two processes racing to
 * write it both end up with the same one. A checksum written with it is verified on every use: a
 * damaged copy is written again.
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

    /** A temporary folder this old is left over from a killed writer (writing takes seconds). */
    static final Duration STALE = Duration.ofMinutes(10);
    static final String CHECKSUM = "checksum.sha256";

    /**
     * The demo checkpoint under cacheRoot, written first if it is not there or no longer matches
     * the checksum written with it (a damaged cache is written again). Leftovers of writers that
     * were killed are removed.
     */
    public static Path ensure(Path cacheRoot) {
        Path target = cacheRoot.resolve(folderName());
        try {
            removeStaleTemporaries(cacheRoot);
            if (Files.isDirectory(target)) {
                if (intact(target)) return target;
                Path damaged = cacheRoot.resolve("." + folderName() + ".damaged-" + System.nanoTime());
                Files.move(target, damaged, StandardCopyOption.ATOMIC_MOVE);
                delete(damaged);
            }
            Files.createDirectories(cacheRoot);
            Path tmp = Files.createTempDirectory(cacheRoot, "." + folderName() + ".tmp-");
            try {
                CheckpointWriter.writeRandom(tmp, CONFIG, SEED, 1);
                Files.writeString(tmp.resolve(CHECKSUM), checksum(tmp), StandardCharsets.UTF_8);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException e) {
                    // another process that finished first leaves an identical copy; anything else fails
                    if (!Files.isDirectory(target)) {
                        throw new IOException("cannot rename " + tmp + " to " + target + ": " + IoErrors.reason(e), e);
                    }
                }
            } finally {
                delete(tmp);
            }
            if (!Files.isDirectory(target)) throw new IOException("demo model folder " + target + " did not appear");
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the demo model into " + cacheRoot + ": "
                    + IoErrors.describe(e), e);
        }
    }

    /** True when the folder's files hash to the checksum written with them. */
    static boolean intact(Path dir) throws IOException {
        Path sum = dir.resolve(CHECKSUM);
        return Files.isRegularFile(sum) && Files.readString(sum, StandardCharsets.UTF_8).equals(checksum(dir));
    }

    /** SHA-256 over every file of the folder but the checksum itself, in name order. */
    static String checksum(Path dir) throws IOException {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            List<Path> files;
            try (Stream<Path> list = Files.list(dir)) {
                files = list.filter(p -> !p.getFileName().toString().equals(CHECKSUM)).sorted().toList();
            }
            byte[] buffer = new byte[1 << 20];
            for (Path f : files) {
                sha.update(f.getFileName().toString().getBytes(StandardCharsets.UTF_8));
                try (InputStream in = Files.newInputStream(f)) {
                    for (int n; (n = in.read(buffer)) > 0;) sha.update(buffer, 0, n);
                }
            }
            return HexFormat.of().formatHex(sha.digest()) + "\n";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void removeStaleTemporaries(Path cacheRoot) throws IOException {
        if (!Files.isDirectory(cacheRoot)) return;
        Instant before = Instant.now().minus(STALE);
        List<Path> stale;
        try (Stream<Path> list = Files.list(cacheRoot)) {
            stale = list.filter(p -> p.getFileName().toString().matches("\\.demo-[0-9a-f]+\\.(tmp|damaged)-.*"))
                    .filter(p -> {
                        try {
                            return Files.getLastModifiedTime(p).toInstant().isBefore(before);
                        } catch (IOException e) {
                            return false;
                        }
                    }).toList();
        }
        for (Path p : stale) delete(p);
    }

    private static void delete(Path root) throws IOException {
        if (!Files.exists(root)) return;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
