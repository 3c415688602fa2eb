package dev.relat.profile;

import dev.relat.binding.CudaKernels;
import dev.relat.ops.Backend;

/**
 * NVTX ranges and the CUDA profiler's capture range, through librelat_cuda (relat.h: NVTX3 of the
 * CUDA toolkit, header-only, and cudaProfilerStart / cudaProfilerStop). Calls go to the CUDA
 * library only when it is loaded and sees a device ({@link Backend#cudaAvailable()}); otherwise
 * every method is a no-op, so CPU-only machines never load CUDA code. Without a profiler attached
 * the NVTX calls cost a function-pointer call each.
 *
 * <p>Failures never throw (a profiler marker must not break a run): the first failing call prints
 * one warning to stderr and the method returns false.
 */
public final class Nvtx {
    private static volatile boolean warned;

    private Nvtx() {}

    /** True when the calls reach librelat_cuda (NVTX, cudaProfilerStart/Stop); false: no-ops. */
    public static boolean active() {
        return Backend.cudaAvailable();
    }

    /** Opens a named range (nests); false when it failed or when no-op. */
    public static boolean push(String name) {
        if (name == null) throw new IllegalArgumentException("NVTX range name must not be null");
        return active() && ok(CudaKernels.INSTANCE.profileRangePush(name), "nvtx range push");
    }

    /** Closes the range opened last. */
    public static boolean pop() {
        return active() && ok(CudaKernels.INSTANCE.profileRangePop(), "nvtx range pop");
    }

    /** cudaProfilerStart: the capture range of nsys --capture-range=cudaProfilerApi begins. */
    public static boolean start() {
        return active() && ok(CudaKernels.INSTANCE.profileStart(), "cudaProfilerStart");
    }

    /** cudaProfilerStop: the capture range ends. */
    public static boolean stop() {
        return active() && ok(CudaKernels.INSTANCE.profileStop(), "cudaProfilerStop");
    }

    private static boolean ok(int status, String what) {
        if (status == 0) return true;
        if (!warned) {
            warned = true;
            System.err.println("relat: warning: " + what + " failed: " + CudaKernels.INSTANCE.lastError()
                    + " (profiling markers are off from here on)");
        }
        return false;
    }
}
