package dev.relat.testing;

import java.util.List;
import java.util.OptionalLong;

/** Picks a stop token that ends one sequence early while another decodes on, for the batched-decode tests. */
public final class StopTokens {
    private StopTokens() {}

    /**
     * A token among the first {@code within} that sequence b decodes freely, taken at its first
     * occurrence there, that some other sequence decodes at least 3 tokens later or never: with it
     * as the only stop token, sequence b stops early while another decodes on. Empty when the draw
     * has none (a random model that repeats the same tokens in every sequence).
     *
     * @param free every sequence's tokens decoded without a stop token
     * @param b the sequence to stop early
     * @param within how far into sequence b to look
     * @return the token, or empty
     */
    public static OptionalLong endingEarly(List<long[]> free, int b, int within) {
        long[] mine = free.get(b);
        for (int i = 0; i < Math.min(within, mine.length); i++) {
            if (firstIndex(mine, mine[i]) != i) continue;
            for (int other = 0; other < free.size(); other++) {
                if (other != b && firstIndex(free.get(other), mine[i]) >= i + 3) return OptionalLong.of(mine[i]);
            }
        }
        return OptionalLong.empty();
    }

    /** Where stop first occurs in tokens: the length of the answer that stops there. */
    public static int firstIndex(long[] tokens, long stop) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] == stop) return i;
        }
        return tokens.length;
    }
}
