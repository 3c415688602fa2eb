package dev.relat.cli;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A Markdown report of a JMH results JSON: every result (median, mean, error), then relat against
 * its libtorch baselines measured in the same run, as speedup ratios of medians.
 *
 * <p>Pairing, within one benchmark class and one set of parameters: a method whose camel-case
 * name contains the word "relat" (relat, relatForward, prefillRelat) is compared with each method
 * whose name becomes the same word list when one word is dropped (relatForward: libtorchForward,
 * sdpaForward; prefillRelat: prefillReference). When a class has a single relat method, every
 * other method of the class is its baseline (RmsNormBench.relat: libtorch; AdamWBench.relat:
 * libtorchAdamW, libtorchFlat).
 */
final class BenchReport {
    /** One JMH result. */
    record Entry(String className, String method, String mode, Map<String, String> params, double median,
            double score, double error, String unit) {
        String paramText() {
            return params.isEmpty() ? "" : params.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue())
                    .collect(Collectors.joining(" "));
        }

        /** Time per operation (avgt, sample, ss): lower is better; throughput: higher. */
        boolean lowerIsBetter() {
            return !mode.equals("thrpt");
        }
    }

    /** relat against one baseline: speedup = how many times faster relat is. */
    record Pair(Entry relat, Entry baseline) {
        double speedup() {
            return relat.lowerIsBetter() ? baseline.median() / relat.median() : relat.median() / baseline.median();
        }
    }

    private BenchReport() {}

    static List<Entry> read(Path json) throws IOException {
        JsonElement root;
        try {
            root = JsonParser.parseString(Files.readString(json, StandardCharsets.UTF_8));
        } catch (RuntimeException e) {
            throw new IOException(json + ": not a JMH results JSON (" + e.getMessage() + ")", e);
        }
        if (!root.isJsonArray()) throw new IOException(json + ": not a JMH results JSON (expected an array)");
        List<Entry> out = new ArrayList<>();
        for (JsonElement e : root.getAsJsonArray()) {
            JsonObject o = e.getAsJsonObject();
            String full = o.get("benchmark").getAsString();
            int dot = full.lastIndexOf('.');
            String cls = full.substring(full.lastIndexOf('.', dot - 1) + 1, dot);
            Map<String, String> params = new LinkedHashMap<>();
            if (o.has("params")) {
                for (Map.Entry<String, JsonElement> p : o.getAsJsonObject("params").entrySet()) {
                    params.put(p.getKey(), p.getValue().getAsString());
                }
            }
            JsonObject m = o.getAsJsonObject("primaryMetric");
            double score = m.get("score").getAsDouble();
            double median = score;
            if (m.has("scorePercentiles") && m.getAsJsonObject("scorePercentiles").has("50.0")) {
                median = m.getAsJsonObject("scorePercentiles").get("50.0").getAsDouble();
            }
            double error = m.has("scoreError") && m.get("scoreError").isJsonPrimitive()
                    && m.get("scoreError").getAsJsonPrimitive().isNumber() ? m.get("scoreError").getAsDouble() : Double.NaN;
            out.add(new Entry(cls, full.substring(dot + 1), o.get("mode").getAsString(), params, median, score, error,
                    m.get("scoreUnit").getAsString()));
        }
        return out;
    }

    static List<String> words(String camel) {
        return Arrays.stream(camel.split("(?<=[a-z0-9])(?=[A-Z])"))
                .map(w -> w.toLowerCase(Locale.ROOT)).collect(Collectors.toList());
    }

    static boolean isRelat(String method) {
        return words(method).contains("relat");
    }

    /** The relat / baseline pairs of a run, in the order of the results. */
    static List<Pair> pairs(List<Entry> entries) {
        List<Pair> out = new ArrayList<>();
        for (Entry r : entries) {
            if (!isRelat(r.method())) continue;
            List<String> key = new ArrayList<>(words(r.method()));
            key.remove("relat");
            long relatsInClass = entries.stream().filter(e -> e.className().equals(r.className()) && isRelat(e.method()))
                    .map(Entry::method).distinct().count();
            for (Entry b : entries) {
                if (b == r || isRelat(b.method()) || !b.className().equals(r.className())
                        || !b.params().equals(r.params()) || !b.mode().equals(r.mode())) {
                    continue;
                }
                if (relatsInClass == 1 || dropsToKey(words(b.method()), key)) out.add(new Pair(r, b));
            }
        }
        return out;
    }

    private static boolean dropsToKey(List<String> words, List<String> key) {
        if (words.size() != key.size() + 1) return false;
        for (int i = 0; i < words.size(); i++) {
            List<String> w = new ArrayList<>(words);
            w.remove(i);
            if (w.equals(key)) return true;
        }
        return false;
    }

    static String markdown(List<Entry> entries, String command) {
        StringBuilder sb = new StringBuilder("# relat bench\n\n");
        sb.append("Command: `").append(command).append("`\n\n");
        List<Pair> pairs = pairs(entries);
        if (!pairs.isEmpty()) {
            sb.append("## relat against the libtorch baselines (same run)\n\n");
            sb.append("Speedup = how many times faster relat is than the baseline, from the medians"
                    + " (time per operation: baseline / relat; throughput: relat / baseline).\n\n");
            sb.append("| benchmark | params | relat | baseline | baseline median | relat median | speedup |\n");
            sb.append("|---|---|---|---|---:|---:|---:|\n");
            for (Pair p : pairs) {
                sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s %s | %s %s | %.2fx |%n",
                        p.relat().className(), p.relat().paramText(), p.relat().method(), p.baseline().method(),
                        num(p.baseline().median()), p.baseline().unit(), num(p.relat().median()), p.relat().unit(),
                        p.speedup()));
            }
            sb.append('\n');
        }
        sb.append("## Every result\n\n");
        sb.append("| benchmark | method | params | mode | median | mean ± error | unit |\n|---|---|---|---|---:|---:|---|\n");
        for (Entry e : entries) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s ± %s | %s |%n", e.className(), e.method(),
                    e.paramText(), e.mode(), num(e.median()), num(e.score()), Double.isNaN(e.error()) ? "?" : num(e.error()),
                    e.unit()));
        }
        return sb.toString();
    }

    private static String num(double v) {
        if (Double.isNaN(v)) return "NaN";
        double a = Math.abs(v);
        if (a != 0 && (a >= 1e6 || a < 1e-3)) return String.format(Locale.ROOT, "%.3e", v);
        return String.format(Locale.ROOT, a >= 100 ? "%.1f" : a >= 1 ? "%.3f" : "%.4f", v);
    }
}
