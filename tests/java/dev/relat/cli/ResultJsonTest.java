package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import dev.relat.engine.Method;
import dev.relat.engine.Phase;
import dev.relat.engine.Result;
import java.io.StringReader;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** solve --json and the eval records stay valid JSON when a loss is not finite. */
class ResultJsonTest {
    private static JsonObject strict(String text) {
        JsonReader reader = new JsonReader(new StringReader(text));
        reader.setStrictness(Strictness.STRICT);
        return JsonParser.parseReader(reader).getAsJsonObject();
    }

    @Test
    void nonFiniteLossesAreNullAndTheStatusSaysSo() {
        Result diverged = new Result(Method.RELAT, "x", 3, 2, 1,
                List.of(2.5, Double.NaN, Double.NEGATIVE_INFINITY), Map.of(Phase.values()[0], 5L), 0);
        String text = ResultJson.of(diverged).toString();
        JsonObject o = strict(text);
        assertEquals("non_finite_loss", o.get("status").getAsString());
        assertEquals(2.5, o.getAsJsonArray("losses").get(0).getAsDouble());
        assertTrue(o.getAsJsonArray("losses").get(1).isJsonNull(), text);
        assertTrue(o.getAsJsonArray("losses").get(2).isJsonNull(), text);

        Result fine = new Result(Method.RELAT, "x", 3, 2, 1, List.of(2.5, 2.0), Map.of(), 0);
        assertEquals("ok", strict(ResultJson.of(fine).toString()).get("status").getAsString());
    }
}
