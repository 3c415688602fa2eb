package dev.relat.eval;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The results file: one JSON line per (question, method), appended and forced to disk as each one
 * finishes, so an interrupted run loses nothing finished. Reopening it resumes: complete lines are
 * kept, a torn last line (the run was killed mid-write) is cut off.
 */
final class ResultsLog implements AutoCloseable {
    private final FileChannel channel;
    private final List<JsonObject> entries = new ArrayList<>();
    private final Set<String> done = new HashSet<>();

    private ResultsLog(FileChannel channel) {
        this.channel = channel;
    }

    static ResultsLog open(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        ResultsLog log = new ResultsLog(channel);
        byte[] bytes = Files.readAllBytes(file);
        int start = 0;
        long keep = 0;
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] != '\n') continue;
            String line = new String(bytes, start, i - start, StandardCharsets.UTF_8);
            try {
                JsonObject o = JsonParser.parseString(line).getAsJsonObject();
                log.remember(o);
                keep = i + 1;
            } catch (RuntimeException e) {
                break;  // everything from a damaged line on is redone
            }
            start = i + 1;
        }
        channel.truncate(keep);
        channel.position(keep);
        return log;
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

    void append(JsonObject entry) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap((entry.toString() + "\n").getBytes(StandardCharsets.UTF_8));
        while (buffer.hasRemaining()) channel.write(buffer);
        channel.force(false);
        remember(entry);
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
