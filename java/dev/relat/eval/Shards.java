package dev.relat.eval;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The files of a sharded run. A {@code --shard I/N} run writes shard.json next to run.json: the
 * shard, the data file (name and SHA-256), the format, --limit, the methods and the ids of its
 * questions. {@link #merge} checks that the shard folders belong to one run and writes one folder
 * with all their results and one summary.
 */
public final class Shards {
    static final String FILE = "shard.json";
    static final String MERGED = "merged.json";

    private Shards() {}

    /** A sharded run that cannot be written or merged as asked; the message is one line. */
    public static final class Refused extends IllegalStateException {
        Refused(String message) {
            super(message);
        }
    }

    /** The SHA-256 of a file, hex. */
    public static String sha256(Path file) throws IOException {
        try {
            return java.util.HexFormat.of().formatHex(
                    MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }

    /**
     * Writes {@code outDir/shard.json} for a run of {@code shard} over {@code questions}; refuses a
     * folder that holds another shard. With {@code shard == null} (an unsharded run) refuses a
     * folder that holds a shard, and writes nothing.
     */
    public static void record(Path outDir, Shard shard, Path data, Dataset.Format format, int limit,
            List<String> methods, List<Question> questions) throws IOException {
        Path file = outDir.resolve(FILE);
        if (Files.exists(file)) {
            String before = read(file).get("shard").getAsString();
            if (shard == null) {
                throw new Refused("--out " + outDir + " holds shard " + before + " of a sharded run; add --shard "
                        + before + " or use another --out");
            }
            if (!before.equals(shard.toString())) {
                throw new Refused("--shard " + shard + ": --out " + outDir + " holds shard " + before
                        + "; use another --out");
            }
        }
        if (shard == null) return;
        JsonObject o = new JsonObject();
        o.addProperty("shard", shard.toString());
        o.addProperty("index", shard.index());
        o.addProperty("count", shard.count());
        o.addProperty("data", data.getFileName().toString());
        o.addProperty("dataSha256", sha256(data));
        o.add("format", new GsonBuilder().serializeNulls().create().toJsonTree(format));
        o.addProperty("limit", limit);
        JsonArray m = new JsonArray();
        methods.forEach(m::add);
        o.add("methods", m);
        JsonArray ids = new JsonArray();
        for (Question q : questions) ids.add(q.id());
        o.add("questions", ids);
        Files.writeString(file, pretty(o), StandardCharsets.UTF_8);
    }

    private static String pretty(JsonElement e) {
        return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(e) + "\n";
    }

    private static JsonObject read(Path file) throws IOException {
        try {
            return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new Refused(file + ": not a JSON object (" + e.getMessage() + ")");
        }
    }

    /** What a merge wrote. */
    public record Merged(int shards, int questions, List<MethodSummary> summaries) {}

    private record Part(Path dir, JsonObject shard, JsonObject run) {}

    /** The fields of shard.json that every shard of one run shares. */
    private static final List<String> SHARED = List.of("count", "dataSha256", "data", "format", "limit", "methods");

    /**
     * Merges the folders of {@code --shard I/N} runs into {@code out}: results.jsonl (in the order
     * of the data file), run.json, merged.json (the shards) and the summary. Refuses, naming the
     * folder and the field, shards of other settings, data, format, limit, methods or N, a shard
     * given twice, a missing shard, a question in two shards and a shard that has not finished.
     */
    public static Merged merge(List<Path> dirs, Path out) throws IOException {
        if (dirs.isEmpty()) throw new Refused("no shard folder to merge");
        List<Part> parts = new ArrayList<>();
        for (Path dir : dirs) {
            if (!Files.isDirectory(dir)) throw new Refused(dir + ": not a folder");
            if (!Files.exists(dir.resolve(FILE))) {
                throw new Refused(dir + ": no " + FILE + " (not the output of relat eval --shard I/N)");
            }
            if (!Files.exists(dir.resolve("run.json"))) throw new Refused(dir + ": no run.json");
            parts.add(new Part(dir, read(dir.resolve(FILE)), read(dir.resolve("run.json"))));
        }
        Part first = parts.get(0);
        for (Part p : parts.subList(1, parts.size())) {
            for (String field : SHARED) {
                if (!Objects.equals(first.shard.get(field), p.shard.get(field))) {
                    throw new Refused(p.dir + ": " + FILE + " field " + field + " is " + p.shard.get(field)
                            + ", but " + first.shard.get(field) + " in " + first.dir);
                }
            }
            String diff = firstDifference(first.run, p.run, "");
            if (diff != null) {
                throw new Refused(p.dir + ": run.json field " + diff + " differs from " + first.dir
                        + " (another model, device, dtype or option)");
            }
        }
        int count = first.shard.get("count").getAsInt();
        Map<Integer, Path> byIndex = new TreeMap<>();
        for (Part p : parts) {
            int index = p.shard.get("index").getAsInt();
            Path before = byIndex.putIfAbsent(index, p.dir);
            if (before != null) {
                throw new Refused(p.dir + ": shard " + index + "/" + count + " again (also " + before + ")");
            }
        }
        Set<Integer> missing = new TreeSet<>();
        for (int i = 0; i < count; i++) if (!byIndex.containsKey(i)) missing.add(i);
        if (!missing.isEmpty()) {
            throw new Refused("missing shard" + (missing.size() > 1 ? "s " : " ")
                    + String.join(", ", missing.stream().map(i -> i + "/" + count).toList())
                    + " (merge needs every shard 0 to " + (count - 1) + ")");
        }
        List<String> methods = first.shard.getAsJsonArray("methods").asList().stream()
                .map(JsonElement::getAsString).toList();
        Map<String, Path> owner = new HashMap<>();
        List<JsonObject> merged = new ArrayList<>();
        for (Part p : parts) {
            Set<String> ids = new HashSet<>();
            for (JsonElement id : p.shard.getAsJsonArray("questions")) {
                Path other = owner.putIfAbsent(id.getAsString(), p.dir);
                if (other != null) {
                    throw new Refused(p.dir + ": question " + id.getAsString() + " is also in " + other);
                }
                ids.add(id.getAsString());
            }
            Map<String, JsonObject> results = new LinkedHashMap<>();
            Path file = p.dir.resolve("results.jsonl");
            if (Files.exists(file)) {
                for (JsonObject e : Evaluator.readResults(file)) {
                    String id = e.get("id").getAsString(), method = e.get("method").getAsString();
                    if (ids.contains(id) && methods.contains(method)) results.put(ResultsLog.key(id, method), e);
                }
            }
            int expected = ids.size() * methods.size();
            if (results.size() < expected) {
                throw new Refused(p.dir + ": results.jsonl has " + results.size() + " of the shard's " + expected
                        + " results (it did not finish; rerun it with the same --out)");
            }
            merged.addAll(results.values());
        }
        merged.sort(Comparator.comparingInt((JsonObject e) -> e.has("line") ? e.get("line").getAsInt() : 0)
                .thenComparing(e -> e.get("id").getAsString())
                .thenComparingInt(e -> methods.indexOf(e.get("method").getAsString())));

        Path resultsOut = out.resolve("results.jsonl");
        if (parts.stream().anyMatch(p -> sameFolder(p.dir, out))) {
            throw new Refused("--out " + out + " is one of the shard folders");
        }
        if (Files.exists(resultsOut) && !Files.exists(out.resolve(MERGED))) {
            throw new Refused("--out " + out + " holds the results of a run, not of a merge; use another --out");
        }
        Files.createDirectories(out);
        List<String> lines = new ArrayList<>();
        for (JsonObject e : merged) lines.add(e.toString());
        Files.write(resultsOut, lines, StandardCharsets.UTF_8);
        Files.writeString(out.resolve("run.json"), Files.readString(first.dir.resolve("run.json")),
                StandardCharsets.UTF_8);
        JsonObject info = new JsonObject();
        for (String field : SHARED) info.add(field, first.shard.get(field));
        JsonArray shardDirs = new JsonArray();
        for (Path dir : byIndex.values()) shardDirs.add(dir.toAbsolutePath().normalize().toString());
        info.add("shards", shardDirs);
        info.addProperty("questions", owner.size());
        Files.writeString(out.resolve(MERGED), pretty(info), StandardCharsets.UTF_8);
        List<MethodSummary> summaries = Report.summarise(merged, methods);
        Report.write(out, summaries, PairedComparison.all(merged, methods),
                first.shard.get("data").getAsString() + " (merged from " + count + " shards)", List.of());
        return new Merged(count, owner.size(), summaries);
    }

    private static boolean sameFolder(Path a, Path b) {
        return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
    }

    /** The dotted name of the first field that differs, null when equal. */
    private static String firstDifference(JsonObject a, JsonObject b, String prefix) {
        Set<String> keys = new TreeSet<>(a.keySet());
        keys.addAll(b.keySet());
        for (String k : keys) {
            JsonElement x = a.get(k), y = b.get(k);
            if (Objects.equals(x, y)) continue;
            if (x != null && y != null && x.isJsonObject() && y.isJsonObject()) {
                return firstDifference(x.getAsJsonObject(), y.getAsJsonObject(), prefix + k + ".");
            }
            return prefix + k;
        }
        return null;
    }
}
