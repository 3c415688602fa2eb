package dev.relat.engine;

import dev.relat.RelatException;

/**
 * One question cannot be solved as asked: it needs more positions than the context limit, or its
 * training diverged to a non-finite loss. The engine stays usable; an evaluation records the
 * question as an error and goes on.
 */
public final class QuestionException extends RelatException {
    /**
     * A question refused or abandoned.
     *
     * @param message what went wrong and, where there is one, the option that would fix it
     */
    public QuestionException(String message) {
        super(message);
    }
}
