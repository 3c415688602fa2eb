package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/** Wilson intervals and exact McNemar p-values against values worked out by hand. */
class StatsTest {
    @Test
    void wilsonMatchesHandComputedIntervals() {
        Stats.Interval i = Stats.wilson(7, 10);
        assertEquals(0.3968, i.low(), 5e-4);
        assertEquals(0.8922, i.high(), 5e-4);
        // 1/2: centre 1/2, half-width z sqrt(1/8 + z^2/16) / (1 + z^2/2)
        Stats.Interval half = Stats.wilson(1, 2);
        assertEquals(0.0945, half.low(), 5e-4);
        assertEquals(0.9055, half.high(), 5e-4);
    }

    @Test
    void wilsonAtTheEdges() {
        assertEquals(new Stats.Interval(0, 1), Stats.wilson(0, 0));
        Stats.Interval none = Stats.wilson(0, 10);
        assertEquals(0, none.low());
        // z^2 / (n + z^2) for 0/n
        assertEquals(Stats.Z95 * Stats.Z95 / (10 + Stats.Z95 * Stats.Z95), none.high(), 1e-12);
        Stats.Interval all = Stats.wilson(20, 20);
        assertEquals(1, all.high());
        assertEquals(20 / (20 + Stats.Z95 * Stats.Z95), all.low(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> Stats.wilson(3, 2));
    }

    @Test
    void mcnemarExactMatchesTheBinomialTail() {
        // 2 * (1 + 12 + 66) / 4096
        assertEquals(2.0 * 79 / 4096, Stats.mcnemarExact(10, 2), 1e-12);
        assertEquals(0.0386, Stats.mcnemarExact(2, 10), 5e-5);
        assertEquals(1.0, Stats.mcnemarExact(5, 5));
        assertEquals(1.0, Stats.mcnemarExact(0, 0));
        assertEquals(0.5, Stats.mcnemarExact(0, 2), 1e-12);  // 2 * 1/4
        assertEquals(2 * Math.pow(0.5, 20), Stats.mcnemarExact(20, 0), 1e-18);
        // a large, lopsided count does not underflow to NaN
        double p = Stats.mcnemarExact(3000, 2000);
        assertEquals(true, p > 0 && p < 1e-40, "p = " + p);
        assertEquals(1.0, Stats.mcnemarExact(2500, 2500));
    }

    private static JsonObject line(String id, String method, boolean correct) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id);
        o.addProperty("method", method);
        o.addProperty("correct", correct);
        return o;
    }

    @Test
    void summaryGivesIntervalsAndPairedComparisons() {
        List<JsonObject> entries = new ArrayList<>();
        // 12 questions: a right on 0..9, b right on 8..11; c answers only questions 0 and 1
        for (int q = 0; q < 12; q++) {
            entries.add(line("q" + q, "a", q < 10));
            entries.add(line("q" + q, "b", q >= 8));
        }
        entries.add(line("q0", "c", false));
        entries.add(line("q1", "c", true));
        List<String> methods = List.of("a", "b", "c", "d");
        List<PairedComparison> pairs = PairedComparison.all(entries, methods);
        assertEquals(List.of(new PairedComparison("a", "b", 12, 8, 2, 2, Stats.mcnemarExact(8, 2)),
                new PairedComparison("a", "c", 2, 1, 0, 1, 1.0),
                new PairedComparison("b", "c", 2, 0, 1, 1, 1.0)), pairs);
        String md = Report.markdown(Report.summarise(entries, methods), pairs, "x.jsonl", List.of());
        assertTrue(md.contains("| a | 10 | 12 | 83.3% | 55.2% to 95.3% |"), md);
        assertTrue(md.contains("| d | 0 | 0 | 0.0% | 0.0% to 100.0% |"), md);
        assertTrue(md.contains("| a | b | 12 | 8 | 2 | 2 | 0.109 |"), md);
        assertTrue(md.contains("| a | c | 2 | 1 | 0 | 1 | 1.00 |"), md);
        assertEquals("1.30e-45", Report.pValue(Stats.mcnemarExact(3000, 2000)));
    }
}
