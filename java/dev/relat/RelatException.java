package dev.relat;

/** Base of every exception relat throws on purpose: bad input, a failed kernel, a bad checkpoint. */
public class RelatException extends RuntimeException {
    public RelatException(String message) {
        super(message);
    }

    public RelatException(String message, Throwable cause) {
        super(message, cause);
    }
}
