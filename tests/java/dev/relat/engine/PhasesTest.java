package dev.relat.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Device;
import org.junit.jupiter.api.Test;

/** The phase scope: begin and end in pairs, the wall time summed per phase, also when a phase throws. */
class PhasesTest {
    /** Records the listener's calls as "begin prefill", "end prefill", ... */
    static final class Recorder implements PhaseListener {
        final List<String> events = new ArrayList<>();

        @Override
        public void questionStart() {
            events.add("question start");
        }

        @Override
        public void questionEnd() {
            events.add("question end");
        }

        @Override
        public void begin(Phase phase) {
            events.add("begin " + phase.label());
        }

        @Override
        public void end(Phase phase) {
            events.add("end " + phase.label());
        }
    }

    @Test
    void closingTheScopeEndsThePhaseAndAddsItsTime() throws InterruptedException {
        Recorder recorder = new Recorder();
        Phases phases = new Phases(new Device("cpu"), recorder);
        try (Phases.Scope phase = phases.open(Phase.PREFILL)) {
            assertEquals(List.of("begin prefill"), recorder.events);
            Thread.sleep(2);
        }
        try (Phases.Scope phase = phases.open(Phase.PREFILL)) {
            Thread.sleep(1);
        }
        assertEquals(List.of("begin prefill", "end prefill", "begin prefill", "end prefill"), recorder.events);
        assertEquals(1, phases.nanos().size());
        assertTrue(phases.nanos().get(Phase.PREFILL) >= 3_000_000, phases.nanos().toString());
    }

    @Test
    void aThrowInsideAPhaseStillEndsIt() {
        Recorder recorder = new Recorder();
        Phases phases = new Phases(new Device("cpu"), recorder);
        IllegalStateException thrown = new IllegalStateException("forced");
        IllegalStateException caught = assertThrows(IllegalStateException.class, () -> {
            try (Phases.Scope phase = phases.open(Phase.BACKWARD)) {
                throw thrown;
            }
        });
        assertSame(thrown, caught);
        assertEquals(List.of("begin backward", "end backward"), recorder.events);
    }
}
