package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.relat.model.QwenConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded demo model: written once, atomically, deterministically; solve uses it without --model. */
class DemoModelTest {
    @TempDir
    static Path cache;

    @Test
    void writtenOnceIntoTheCacheAndReused() throws IOException {
        Path dir = DemoModel.ensure(cache);
        assertEquals(cache.resolve(DemoModel.folderName()), dir);
        assertTrue(dir.getFileName().toString().matches("demo-[0-9a-f]{12}"), dir.toString());
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
        }
        QwenConfig written = QwenConfig.read(dir.resolve("config.json"));
        assertEquals(DemoModel.CONFIG, written);
        FileTime before = Files.getLastModifiedTime(dir.resolve("model.safetensors"));
        assertEquals(dir, DemoModel.ensure(cache));
        assertEquals(before, Files.getLastModifiedTime(dir.resolve("model.safetensors")), "not rewritten");
        try (Stream<Path> s = Files.list(cache)) {
            assertEquals(List.of(dir), s.toList(), "no temporary folder left behind");
        }
    }

    @Test
    void deterministicWeights(@TempDir Path other) throws IOException {
        Path a = DemoModel.ensure(cache);
        Path b = DemoModel.ensure(other);
        assertTrue(Arrays.equals(Files.readAllBytes(a.resolve("model.safetensors")),
                Files.readAllBytes(b.resolve("model.safetensors"))), "the same bytes every time");
    }

    @Test
    void cacheRootFollowsTheEnvironment() {
        assertEquals(Path.of("/x/own"), DemoModel.cacheRoot(Map.of("RELAT_CACHE_DIR", "/x/own", "XDG_CACHE_HOME", "/y")));
        assertEquals(Path.of("/y/relat"), DemoModel.cacheRoot(Map.of("XDG_CACHE_HOME", "/y")));
        assertEquals(Path.of(System.getProperty("user.home"), ".cache", "relat"), DemoModel.cacheRoot(Map.of()));
    }

    @Test
    void solveWithoutModelRunsTheDemoAndSaysItIsRandom() {
        FakeEngine.Factory engines = new FakeEngine.Factory((q, o) -> "noise");
        CliTestSupport.Run r = CliTestSupport.run(engines, cache, "solve", "What is 2+3?");
        assertEquals(0, r.exit(), r.err());
        assertEquals(cache.resolve(DemoModel.folderName()), engines.opened.get(0).checkout);
        assertEquals(DemoModel.DEFAULT_MAX_NEW_TOKENS, engines.calls().get(0).options().maxNewTokens());
        assertTrue(r.out().contains("embedded demo (random weights)"), r.out());
        assertEquals(1, occurrences(r.out() + r.err(), DemoModel.NOTICE), "the note once: " + r.out() + r.err());
        assertTrue(r.err().contains(DemoModel.NOTICE), r.err());

        CliTestSupport.Run explicit = CliTestSupport.run(engines, cache, "solve", "--max-new-tokens", "5", "--json", "q");
        assertEquals(0, explicit.exit(), explicit.err());
        assertEquals(5, engines.calls().get(1).options().maxNewTokens());
        JsonObject o = JsonParser.parseString(explicit.out()).getAsJsonObject();
        assertTrue(o.get("demo").getAsBoolean());
        assertTrue(o.get("notice").getAsString().contains("RANDOM"));
        assertNotEquals(0, o.get("wallNanos").getAsLong());
    }

    @Test
    void aDamagedCopyIsWrittenAgainAndKilledWritersLeaveNothingBehind(@TempDir Path root) throws IOException {
        Path dir = DemoModel.ensure(root);
        Path weights = dir.resolve("model.safetensors");
        byte[] good = Files.readAllBytes(weights);
        byte[] bad = good.clone();
        bad[bad.length / 2] ^= 1;
        Files.write(weights, bad);
        assertEquals(dir, DemoModel.ensure(root));
        assertTrue(Arrays.equals(good, Files.readAllBytes(weights)), "the damaged copy is replaced");

        Path stale = Files.createDirectory(root.resolve("." + DemoModel.folderName() + ".tmp-killed"));
        Files.writeString(stale.resolve("model.safetensors"), "half");
        Files.setLastModifiedTime(stale, FileTime.from(Instant.now().minus(Duration.ofHours(1))));
        Path writing = Files.createDirectory(root.resolve("." + DemoModel.folderName() + ".tmp-writing"));
        DemoModel.ensure(root);
        assertTrue(!Files.exists(stale), "a killed writer's folder is removed");
        assertTrue(Files.isDirectory(writing), "a folder another process may still be writing stays");
    }

    @Test
    void controlCharactersAreShownNotSentToTheTerminal() {
        assertEquals("red \\x1b[31mtext\\x07 tab\tend\\x0a", SolveCommand.printable("red \u001b[31mtext\u0007 tab\tend\n"));
        assertEquals("plain \u00e9", SolveCommand.printable("plain \u00e9"));
    }

    private static int occurrences(String text, String part) {
        int n = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) n++;
        return n;
    }
}
