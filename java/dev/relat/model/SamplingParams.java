package dev.relat.model;

/**
 * How the next token is chosen: greedy when temperature is 0, else sampled from
 * softmax(logits / temperature) restricted to the top-k tokens (k = 0: no limit) and then to the
 * smallest set whose probability reaches top-p (1.0: no limit), Hugging Face's order. The seed
 * makes a sampled run repeatable.
 *
 * @param temperature 0 for greedy; else the softmax temperature, finite
 * @param topK the most likely tokens kept; 0 for no limit
 * @param topP the probability mass kept, in (0, 1]; 1.0 for no limit
 * @param seed seeds the draw's generator (on the logits' device); unused when greedy
 */
public record SamplingParams(double temperature, int topK, double topP, long seed) {
    /** Argmax decoding. */
    public static final SamplingParams GREEDY = new SamplingParams(0, 0, 1.0, 0);

    /**
     * Checks the ranges.
     *
     * @param temperature 0 or more, finite
     * @param topK 0 or more
     * @param topP in (0, 1]
     * @param seed any
     * @throws IllegalArgumentException naming the setting out of range
     */
    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0 and finite, got " + temperature);
        }
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }

    /**
     * Sampled decoding (temperature 0 still means greedy).
     *
     * @param temperature the softmax temperature
     * @param topK the most likely tokens kept; 0 for no limit
     * @param topP the probability mass kept; 1.0 for no limit
     * @param seed seeds the draw
     * @return the parameters
     * @throws IllegalArgumentException naming the setting out of range
     */
    public static SamplingParams sampled(double temperature, int topK, double topP, long seed) {
        return new SamplingParams(temperature, topK, topP, seed);
    }

    /**
     * Whether decoding takes the argmax.
     *
     * @return true when temperature is 0
     */
    public boolean greedy() {
        return temperature == 0;
    }
}
