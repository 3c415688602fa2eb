package dev.relat.eval;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonPrimitive;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * JSON that strict parsers accept: a non-finite number is written as null (Gson would write a bare
 * NaN), and the record's status field says why. Also the short content hashes that key resumed
 * results.
 */
public final class Json {
    /** Status of a result whose numbers are all finite. */
    public static final String OK = "ok";
    /** Status of a result with a NaN or infinite loss (written as null). */
    public static final String NON_FINITE = "non_finite_loss";
    /** Status of a question the engine refused or gave up on; the record's error field says why. */
    public static final String ERROR = "error";

    private Json() {}

    public static JsonElement number(double value) {
        return Double.isFinite(value) ? new JsonPrimitive(value) : JsonNull.INSTANCE;
    }

    public static JsonArray numbers(List<Double> values) {
        JsonArray array = new JsonArray();
        for (double v : values) array.add(number(v));
        return array;
    }

    /** OK, or NON_FINITE when any value is NaN or infinite. */
    public static String status(List<Double> losses) {
        return losses.stream().allMatch(Double::isFinite) ? OK : NON_FINITE;
    }

    /** The first 16 hex digits of the SHA-256 of the parts, each followed by a NUL. */
    public static String hash(String... parts) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String part : parts) {
                sha.update(part.getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0);
            }
            return HexFormat.of().formatHex(sha.digest(), 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }
}
