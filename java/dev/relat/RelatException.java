package dev.relat;

/** Base of every exception relat throws on purpose: bad input, a failed kernel, a bad checkpoint. */
public class RelatException extends RuntimeException {
    /**
     * A failure relat reports.
     *
     * @param message one line naming what failed and, where known, the file, option or tensor
     */
    public RelatException(String message) {
        super(message);
    }

    /**
     * A failure relat reports, caused by another exception.
     *
     * @param message one line naming what failed and, where known, the file, option or tensor
     * @param cause the underlying exception
     */
    public RelatException(String message, Throwable cause) {
        super(message, cause);
    }
}
