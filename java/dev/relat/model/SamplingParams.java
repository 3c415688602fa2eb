package dev.relat.model;

/**
 * How the next token is chosen: greedy when temperature is 0, else sampled from
 * softmax(logits / temperature) restricted to the top-k tokens (k = 0: no limit) and then to the
 * smallest set whose probability reaches top-p (1.0: no limit), Hugging Face's order. The seed
 * makes a sampled run repeatable.
 */
public record SamplingParams(double temperature, int topK, double topP, long seed) {
    public static final SamplingParams GREEDY = new SamplingParams(0, 0, 1.0, 0);

    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0 and finite, got " + temperature);
        }
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }

    public static SamplingParams sampled(double temperature, int topK, double topP, long seed) {
        return new SamplingParams(temperature, topK, topP, seed);
    }

    public boolean greedy() {
        return temperature == 0;
    }
}
