package dev.relat.model;

import dev.relat.RelatException;

/**
 * A checkpoint directory or file cannot be used: a malformed safetensors header, a missing or
 * misshapen tensor, an unsupported config. The message names the file and the tensor or field.
 */
public final class CheckpointException extends RelatException {
    /**
     * A checkpoint failure.
     *
     * @param message starts with the file, then names the tensor or field at fault
     */
    public CheckpointException(String message) {
        super(message);
    }

    /**
     * A checkpoint failure caused by another exception (an I/O error, a JSON syntax error).
     *
     * @param message starts with the file, then names the tensor or field at fault
     * @param cause the underlying exception
     */
    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
