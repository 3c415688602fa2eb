package dev.relat.cli;

/** A bad command line or option value: printed as one line, exit code 2. */
final class UsageError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UsageError(String message) {
        super(message);
    }
}
