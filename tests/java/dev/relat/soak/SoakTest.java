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
 * resident set outside the Java heap is noisy (allocator arenas: one jump of 51 MiB, later
 * returned), so its bound is loose: 112 MiB, twice the largest growth over any two samples (52 MiB,
 * questions 190 to 210).
 */
class SoakTest {
    static final double MAX_POINTER_SLOPE = 0.5;
    static final long MAX_RSS_GROWTH = 112L << 20;

    @Test
    void thirtyQuestionsDoNotGrowNativeMemory(@TempDir Path cache) {
        List<Soak.Sample> samples = Soak.run(30, cache);
        String table = samples.toString();
        double pointers = Soak.slope(samples, Soak.Sample::javacppPointers);
        // Outside the Java heap: in the test JVM the heap was sized by the tests before this one.
        long growth = samples.get(samples.size() - 1).nonHeapBytes() - samples.get(0).nonHeapBytes();
        System.out.printf("soak: %s%npointers %.2f/question, resident set outside the heap %+d MiB from question 10"
                + " to 30%n", table, pointers, growth >> 20);
        assertTrue(pointers < MAX_POINTER_SLOPE, "live JavaCPP pointers grow " + pointers + "/question: " + table);
        assertTrue(growth < MAX_RSS_GROWTH, "resident set outside the heap grows " + (growth >> 20) + " MiB: "
                + table);
    }
}
