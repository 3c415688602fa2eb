package dev.relat.soak;

import dev.relat.cli.DemoModel;
import dev.relat.engine.Engine;
import dev.relat.engine.Method;
import dev.relat.engine.Options;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Soak: one JVM solves many questions on the demo model and samples the resident set and the live
 * JavaCPP pointers every 10 questions; a long run must not grow. Not a timed test:
 * {@code java -cp ... dev.relat.soak.Soak 500} prints the samples and the slopes; SoakTest runs a
 * short version against a bound.
 */
public final class Soak {
    /** One sample after {@code question} questions. */
    public record Sample(int question, long rssBytes, long heapBytes, long javacppBytes, long javacppPointers) {
        /** The resident set outside the Java heap: native memory, which the heap's resizing does not move. */
        public long nonHeapBytes() {
            return rssBytes - heapBytes;
        }
    }

    private Soak() {}

    public static void main(String[] args) throws Exception {
        int questions = args.length > 0 ? Integer.parseInt(args[0]) : 500;
        List<Sample> samples = run(questions, DemoModel.cacheRoot(System.getenv()));
        System.out.println("question  rss_MiB  heap_MiB  non_heap_MiB  javacpp_MiB  javacpp_pointers");
        for (Sample s : samples) {
            System.out.printf(Locale.ROOT, "%8d  %7.1f  %8.1f  %12.1f  %11.1f  %16d%n", s.question(),
                    s.rssBytes() / 1048576.0, s.heapBytes() / 1048576.0, s.nonHeapBytes() / 1048576.0,
                    s.javacppBytes() / 1048576.0, s.javacppPointers());
        }
        System.out.printf(Locale.ROOT, "slope after the first sample: rss %.1f KiB/question, non-heap %.1f KiB/question,"
                + " javacpp %.1f KiB/question, %.2f pointers/question%n", slope(samples, Sample::rssBytes) / 1024,
                slope(samples, Sample::nonHeapBytes) / 1024, slope(samples, Sample::javacppBytes) / 1024,
                slope(samples, Sample::javacppPointers));
    }

    /** Solves {@code questions} questions (relat, small settings), sampling every 10. */
    public static List<Sample> run(int questions, Path cacheRoot) {
        Options options = Options.builder().method(Method.RELAT).latentSteps(4).updateSteps(2).loraRank(4)
                .maxNewTokens(8).build();
        List<Sample> samples = new ArrayList<>();
        try (Engine engine = Engine.open(DemoModel.ensure(cacheRoot), new Device("cpu"), ScalarType.Float)) {
            for (int i = 1; i <= questions; i++) {
                engine.solve("What is " + i + " + " + (i % 7) + "? Think step by step.", options);
                if (i % 10 == 0) samples.add(sample(i));
            }
        }
        return samples;
    }

    private static Sample sample(int question) {
        System.gc();  // wrappers that only the collector frees must not count as growth
        return new Sample(question, Pointer.physicalBytes(), Runtime.getRuntime().totalMemory(), Pointer.totalBytes(),
                Pointer.totalCount());
    }

    /** Least-squares slope per question of a quantity over the samples, the first one left out (warm-up). */
    public static double slope(List<Sample> samples, java.util.function.ToLongFunction<Sample> value) {
        List<Sample> s = samples.size() > 2 ? samples.subList(1, samples.size()) : samples;
        double n = s.size(), sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (Sample x : s) {
            double q = x.question(), y = value.applyAsLong(x);
            sx += q;
            sy += y;
            sxx += q * q;
            sxy += q * y;
        }
        double denominator = n * sxx - sx * sx;
        return denominator == 0 ? 0 : (n * sxy - sx * sy) / denominator;
    }

}
