package dev.relat.model;

import dev.relat.RelatException;

/**
 * A checkpoint directory or file cannot be used: a malformed safetensors header, a missing or
 * misshapen tensor, an unsupported config. The message names the file and the tensor or field.
 */
public final class CheckpointException extends RelatException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
