package dev.relat.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The seed source every randomised test uses: replay, recording, and failure messages. */
class SeedsTest {
    private String savedSeed, savedRecord;

    @BeforeEach
    void save() {
        savedSeed = System.getProperty(Seeds.SEED);
        savedRecord = System.getProperty(Seeds.RECORD);
    }

    @AfterEach
    void restore() {
        set(Seeds.SEED, savedSeed);
        set(Seeds.RECORD, savedRecord);
    }

    private static void set(String key, String value) {
        if (value == null) System.clearProperty(key);
        else System.setProperty(key, value);
    }

    @Test
    void theReplayPropertyFixesEverySeedAndAcceptsSignedAndUnsignedForms() {
        System.setProperty(Seeds.SEED, "-1753629936580866368");
        assertEquals(-1753629936580866368L, Seeds.fresh());
        assertEquals(-1753629936580866368L, Seeds.fresh());
        assertEquals(-1753629936580866368L, Seeds.current().orElseThrow());
        System.setProperty(Seeds.SEED, "18446744073709551615"); // a native test's unsigned seed
        assertEquals(-1L, Seeds.fresh());
        System.setProperty(Seeds.SEED, "12ab");
        var e = assertThrows(IllegalArgumentException.class, Seeds::fresh);
        assertTrue(e.getMessage().contains("relat.test.seed=12ab"), e.getMessage());
    }

    @BeforeAll
    static void drawASeedBeforeAnyTest() {
        Seeds.fresh(); // stale by the time any test here starts, unless SeedScope forgets it
    }

    @Test
    void everyTestStartsWithoutASeed() {
        assertTrue(Seeds.current().isEmpty(), "stale seed " + Seeds.current());
        Seeds.fresh();
        Seeds.forget();
        assertTrue(Seeds.current().isEmpty());
    }

    @Test
    void withoutThePropertyEverySeedIsFresh() {
        System.clearProperty(Seeds.SEED);
        long a = Seeds.fresh(), b = Seeds.fresh();
        assertNotEquals(a, b);
        assertEquals(b, Seeds.current().orElseThrow());
    }

    @Test
    void aFailedCheckNamesTheSeedAndHowToReplayIt() {
        System.setProperty(Seeds.SEED, "42");
        Seeds.fresh();
        AssertionError e = assertThrows(AssertionError.class, () -> TensorAssert.assertWithin(2e-3, 1e-3, "dh"));
        assertTrue(e.getMessage().contains("dh: 2.000e-03 exceeds the bound 1.0e-03"), e.getMessage());
        assertTrue(e.getMessage().contains("seed 42 (replay: -Drelat.test.seed=42)"), e.getMessage());
        TensorAssert.assertWithin(1e-3, 1e-3, "dh"); // at the bound passes
        assertThrows(AssertionError.class, () -> TensorAssert.assertWithin(Double.NaN, 1e-3, "dh"));
    }

    @Test
    void recordsOneLinePerCheckWithTheSeedTakenOutOfItsName(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("record.tsv");
        System.setProperty(Seeds.RECORD, file.toString());
        System.setProperty(Seeds.SEED, "7");
        Seeds.fresh();
        TensorAssert.assertWithin(1.5e-6, 1e-5, "rope f32 [3, 5] seed 7 dq");
        Seeds.record("entropy (seed -9)", 2.5, Double.NaN, 7);
        List<String> lines = Files.readAllLines(file);
        assertEquals(2, lines.size());
        assertEquals(List.of("SeedsTest#recordsOneLinePerCheckWithTheSeedTakenOutOfItsName", "rope f32 [3, 5] dq",
                "1.500000e-06", "1.000000e-05", "7"), List.of(lines.get(0).split("\t")));
        assertEquals("entropy", lines.get(1).split("\t")[1]);
        assertEquals("NaN", lines.get(1).split("\t")[3]);
    }
}
