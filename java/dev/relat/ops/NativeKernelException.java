package dev.relat.ops;

import dev.relat.RelatException;

/** A kernel returned an error status; the message is the native library's own. */
public final class NativeKernelException extends RelatException {
    /** The relat_status the kernel returned. */
    private final int status;

    NativeKernelException(int status, String message) {
        super(message);
        this.status = status;
    }

    /**
     * {@return the relat_status code: 1 invalid argument, 2 unsupported by this build, 3 CUDA
     * runtime or launch failure, 4 internal (native/include/relat/relat.h)}
     */
    public int status() {
        return status;
    }
}
