package dev.relat.eval;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The results file: one JSON line per (question, method), appended and forced to disk as each one
 * finishes, so an interrupted run loses nothing finished. Reopening it resumes: complete lines are
 * kept; a line that is not a result (a torn last line of a killed run, or garbage) is moved to
 * {@code results.damaged.txt} and reported, so nothing is deleted without a word.
 */
final class ResultsLog implements AutoCloseable {
    private final Path file;
    private FileChannel channel;
    private final List<JsonObject> entries = new ArrayList<>();
    private final Set<String> done = new HashSet<>();
    private final List<String> notes = new ArrayList<>();

    private ResultsLog(Path file) {
        this.file = file;
    }

    static ResultsLog open(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        ResultsLog log = new ResultsLog(file);
        List<String> damaged = new ArrayList<>();
        if (Files.exists(file)) {
            byte[] bytes = Files.readAllBytes(file);
            int line = 0;
            for (int start = 0; start < bytes.length; ) {
                int end = start;
                while (end < bytes.length && bytes[end] != '\n') end++;
                line++;
                String text = new String(bytes, start, end - start, StandardCharsets.UTF_8);
                boolean torn = end == bytes.length;
                start = end + 1;
                JsonObject entry = parse(text);
                if (entry != null && !torn) {
                    log.remember(entry);
                } else if (!text.isBlank()) {
                    damaged.add(text);
                    log.notes.add(file.getFileName() + " line " + line + (torn
                            ? " is incomplete (a run stopped while writing it): moved to results.damaged.txt;"
                                    + " it will be redone"
                            : " is not a result line: moved to results.damaged.txt"));
                }
            }
        }
        if (!damaged.isEmpty()) {
            Files.write(file.resolveSibling("results.damaged.txt"), damaged, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            log.rewrite();
        }
        log.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND);
        return log;
    }

    /** A result line: a JSON object with string id and method; null for anything else. */
    private static JsonObject parse(String text) {
        try {
            JsonElement e = JsonParser.parseString(text);
            if (!e.isJsonObject()) return null;
            JsonObject o = e.getAsJsonObject();
            if (!o.has("id") || !o.has("method")) return null;
            o.get("id").getAsString();
            o.get("method").getAsString();
            return o;
        } catch (RuntimeException e) {
            return null;
        }
    }

    static String key(String id, String method) {
        return method + "\u0000" + id;
    }

    boolean isDone(String id, String method) {
        return done.contains(key(id, method));
    }

    List<JsonObject> entries() {
        return entries;
    }

    /** What opening the file found and moved aside, one line each. */
    List<String> notes() {
        return notes;
    }

    void append(JsonObject entry) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap((entry.toString() + "\n").getBytes(StandardCharsets.UTF_8));
        while (buffer.hasRemaining()) channel.write(buffer);
        channel.force(false);
        remember(entry);
    }

    /** Moves the entries that match to {@code results.dropped.jsonl}; returns how many. */
    int drop(Predicate<JsonObject> which) throws IOException {
        List<String> dropped = new ArrayList<>();
        for (JsonObject o : entries) if (which.test(o)) dropped.add(o.toString());
        if (dropped.isEmpty()) return 0;
        Files.write(file.resolveSibling("results.dropped.jsonl"), dropped, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        entries.removeIf(which);
        done.clear();
        for (JsonObject o : entries) done.add(key(o.get("id").getAsString(), o.get("method").getAsString()));
        channel.close();
        rewrite();
        channel = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        return dropped.size();
    }

    /** Writes the kept entries to a new file and moves it over the old one. */
    private void rewrite() throws IOException {
        Path temp = file.resolveSibling(file.getFileName() + ".tmp");
        List<String> lines = new ArrayList<>();
        for (JsonObject o : entries) lines.add(o.toString());
        Files.write(temp, lines, StandardCharsets.UTF_8);
        Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private void remember(JsonObject o) {
        entries.add(o);
        done.add(key(o.get("id").getAsString(), o.get("method").getAsString()));
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
