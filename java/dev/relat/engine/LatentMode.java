package dev.relat.engine;

import java.util.Locale;

/** How a latent step turns the last hidden state h into the next input embedding e. */
public enum LatentMode {
    /** ReLAT default: e = softmax(U h / tau)^T E. */
    SOFT,
    /** LatentMAS: e = h W_a rescaled to the mean row norm of E, W_a = (U^T U + lambda I)^-1 U^T E. */
    REALIGN,
    /** e = h rescaled to the mean row norm of E. */
    IDENTITY;

    /**
     * Parses a latent mode as the command line writes it.
     *
     * @param name soft, realign or identity, any case
     * @return the mode
     * @throws IllegalArgumentException naming the unknown mode
     */
    public static LatentMode parse(String name) {
        try {
            return valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown latent mode '" + name + "' (expected soft, realign or identity)");
        }
    }
}
