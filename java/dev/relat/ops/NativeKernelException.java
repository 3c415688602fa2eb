package dev.relat.ops;

import dev.relat.RelatException;

/** A kernel returned an error status; the message is the native library's own. */
public final class NativeKernelException extends RelatException {
    private final int status;

    NativeKernelException(int status, String message) {
        super(message);
        this.status = status;
    }

    /** The relat_status code (see native/include/relat/relat.h). */
    public int status() {
        return status;
    }
}
