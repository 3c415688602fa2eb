package dev.relat.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;

/**
 * JSON as a checkpoint's files must be read: RFC 8259 only (no NaN, comments or trailing text), a
 * key twice in one object is an error naming it (Gson would keep the last silently), nesting is
 * bounded, and messages carry the position without Gson's advice.
 */
final class StrictJson {
    /** Deeper than any real config or header; keeps a hostile file from exhausting the stack. */
    static final int MAX_DEPTH = 256;

    private StrictJson() {}

    /** Parses text; errors are CheckpointExceptions starting with {@code source}. */
    public static JsonElement parse(String text, String source) {
        try (JsonReader in = new JsonReader(new StringReader(text))) {
            in.setStrictness(Strictness.STRICT);
            JsonElement root = read(in, source, 0);
            if (in.peek() != JsonToken.END_DOCUMENT) {
                throw new CheckpointException(source + ": text after the JSON value at " + position(in));
            }
            return root;
        } catch (IOException | IllegalStateException | NumberFormatException e) {
            throw new CheckpointException(source + " is not valid JSON: " + message(e), e);
        }
    }

    /** Parses an object, failing with "{source}: not a JSON object" otherwise. */
    public static JsonObject object(String text, String source) {
        JsonElement e = parse(text, source);
        if (!e.isJsonObject()) throw new CheckpointException(source + ": not a JSON object");
        return e.getAsJsonObject();
    }

    private static JsonElement read(JsonReader in, String source, int depth) throws IOException {
        if (depth > MAX_DEPTH) {
            throw new CheckpointException(source + ": JSON nested deeper than " + MAX_DEPTH + " at " + position(in));
        }
        switch (in.peek()) {
            case BEGIN_OBJECT -> {
                JsonObject o = new JsonObject();
                in.beginObject();
                while (in.hasNext()) {
                    String path = in.getPath();
                    String key = in.nextName();
                    if (o.has(key)) {
                        throw new CheckpointException(source + ": key '" + key + "' appears twice in the object at "
                                + path.substring(0, Math.max(1, path.lastIndexOf('.'))));
                    }
                    o.add(key, read(in, source, depth + 1));
                }
                in.endObject();
                return o;
            }
            case BEGIN_ARRAY -> {
                JsonArray a = new JsonArray();
                in.beginArray();
                while (in.hasNext()) a.add(read(in, source, depth + 1));
                in.endArray();
                return a;
            }
            case STRING -> {
                return new JsonPrimitive(in.nextString());
            }
            case NUMBER -> {
                return JsonParser.parseString(in.nextString());  // Gson's lazily parsed number, as usual
            }
            case BOOLEAN -> {
                return new JsonPrimitive(in.nextBoolean());
            }
            case NULL -> {
                in.nextNull();
                return JsonNull.INSTANCE;
            }
            default -> throw new CheckpointException(source + " is not valid JSON: unexpected " + in.peek() + " at "
                    + position(in));
        }
    }

    private static String position(JsonReader in) {
        String s = in.toString();  // "JsonReader at line L column C path P"
        int at = s.indexOf(" at ");
        return at < 0 ? in.getPath() : s.substring(at + 4);
    }

    /** Gson's message without its troubleshooting link and its advice to read leniently. */
    static String message(Exception e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int see = m.indexOf("\nSee ");
        if (see >= 0) m = m.substring(0, see);
        return m.replaceAll("Use JsonReader\\.setStrictness\\([^)]*\\) to accept malformed JSON", "malformed JSON")
                .replaceAll("Use JsonReader\\.setLenient\\(true\\) to accept malformed JSON", "malformed JSON")
                .strip();
    }
}
