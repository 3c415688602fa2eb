package dev.relat.soak;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The short soak: 30 questions in this JVM on the demo model; native memory must not grow with the
 * number of questions. Bounds from the 500-question run in docs/testing.md ("Soak"): the live
 * JavaCPP pointers stayed at 30 throughout, so any steady growth is a leak of native tensors; the
 * resident set is noisy (allocator arenas: one jump of 44 MiB, later returned), so its bound is
 * loose: 112 MiB, twice the largest growth over any two samples (52 MiB, questions 190 to 210).
 */
class SoakTest {
    static final double MAX_POINTER_SLOPE = 0.5;
    static final long MAX_RSS_GROWTH = 112L << 20;

    @Test
    void thirtyQuestionsDoNotGrowNativeMemory(@TempDir Path cache) {
        List<Soak.Sample> samples = Soak.run(30, cache);
        String table = samples.toString();
        double pointers = Soak.slope(samples, Soak.Sample::javacppPointers);
        long rssGrowth = samples.get(samples.size() - 1).rssBytes() - samples.get(0).rssBytes();
        System.out.printf("soak: %s%npointers %.2f/question, resident set %+d MiB from question 10 to 30%n", table,
                pointers, rssGrowth >> 20);
        assertTrue(pointers < MAX_POINTER_SLOPE, "live JavaCPP pointers grow " + pointers + "/question: " + table);
        assertTrue(rssGrowth < MAX_RSS_GROWTH, "resident set grows " + (rssGrowth >> 20) + " MiB: " + table);
    }
}
