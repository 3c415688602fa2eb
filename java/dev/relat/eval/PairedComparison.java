package dev.relat.eval;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Two methods on the questions both answered: {@code wins} the questions only {@code first} got
 * right, {@code losses} only {@code second}, {@code ties} both or neither, and the exact McNemar
 * p-value of wins against losses.
 */
public record PairedComparison(String first, String second, int questions, int wins, int losses, int ties,
        double pValue) {

    /** Every pair of methods (in the given order) with at least one question in common. */
    static List<PairedComparison> all(List<JsonObject> entries, List<String> methods) {
        Map<String, Map<String, Boolean>> correct = new HashMap<>();
        for (JsonObject e : entries) {
            correct.computeIfAbsent(e.get("method").getAsString(), m -> new HashMap<>())
                    .put(e.get("id").getAsString(), e.get("correct").getAsBoolean());
        }
        List<PairedComparison> out = new ArrayList<>();
        for (int i = 0; i < methods.size(); i++) {
            for (int j = i + 1; j < methods.size(); j++) {
                Map<String, Boolean> a = correct.getOrDefault(methods.get(i), Map.of());
                Map<String, Boolean> b = correct.getOrDefault(methods.get(j), Map.of());
                int n = 0, wins = 0, losses = 0;
                for (Map.Entry<String, Boolean> q : a.entrySet()) {
                    Boolean other = b.get(q.getKey());
                    if (other == null) continue;
                    n++;
                    if (q.getValue() && !other) wins++;
                    if (!q.getValue() && other) losses++;
                }
                if (n == 0) continue;
                out.add(new PairedComparison(methods.get(i), methods.get(j), n, wins, losses, n - wins - losses,
                        Stats.mcnemarExact(wins, losses)));
            }
        }
        return out;
    }
}
