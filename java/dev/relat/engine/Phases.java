package dev.relat.engine;

import java.util.EnumMap;
import java.util.Map;
import org.bytedeco.pytorch.Device;

/**
 * The timed phases of one question. {@link #open} begins a phase (the listener's begin, then the
 * clock starts); closing the scope it returns ends it: the device's queued work is waited for, so
 * the wall time covers the phase's kernels, the time is added to the phase's total, and the
 * listener's end is called. Open every phase with try-with-resources: an exception thrown inside
 * a phase still ends it, so a listener's range (an NVTX range under --profile) never stays open.
 */
final class Phases {
    private final Device device;
    private final PhaseListener listener;
    private final Map<Phase, Long> nanos = new EnumMap<>(Phase.class);

    Phases(Device device, PhaseListener listener) {
        this.device = device;
        this.listener = listener;
    }

    /** Begins phase; the returned scope ends it when closed. Phases do not nest. */
    Scope open(Phase phase) {
        listener.begin(phase);
        return new Scope(phase, System.nanoTime());
    }

    /** Wall time per phase so far, summed over the times each ran. */
    Map<Phase, Long> nanos() {
        return nanos;
    }

    /** One running phase. */
    final class Scope implements AutoCloseable {
        private final Phase phase;
        private final long start;

        private Scope(Phase phase, long start) {
            this.phase = phase;
            this.start = start;
        }

        /** Ends the phase; the listener's end is called even when waiting for the device fails. */
        @Override
        public void close() {
            try {
                DeviceMemory.synchronize(device);
                nanos.merge(phase, System.nanoTime() - start, Long::sum);
            } finally {
                listener.end(phase);
            }
        }
    }
}
