package dev.relat.profile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import dev.relat.engine.Phase;
import dev.relat.ops.Backend;
import org.junit.jupiter.api.Test;

/** The profiling markers: no-ops on the CPU library, NVTX through the CUDA library when it loads. */
class NvtxTest {
    @Test
    void cpuLibraryMarkersAreNoOpsThatValidate() {
        CpuKernels.load();
        assertEquals(0, CpuKernels.INSTANCE.profileStart());
        assertEquals(0, CpuKernels.INSTANCE.profileRangePush("range"));
        assertEquals(0, CpuKernels.INSTANCE.profileRangePop());
        assertEquals(0, CpuKernels.INSTANCE.profileStop());
        assertEquals(1, CpuKernels.INSTANCE.profileRangePush(null), "NULL name: RELAT_ERR_INVALID_ARGUMENT");
        assertTrue(CpuKernels.INSTANCE.lastError().contains("name is NULL"), CpuKernels.INSTANCE.lastError());
    }

    @Test
    void javaSideIsANoOpWithoutCuda() {
        assumeTrue(!Backend.cudaAvailable(), "CUDA is available here");
        assertFalse(Nvtx.active());
        assertFalse(Nvtx.start());
        assertFalse(Nvtx.push("x"));
        assertFalse(Nvtx.pop());
        assertFalse(Nvtx.stop());
    }

    /** NVTX3 needs no GPU and no driver: without a tool attached the calls return at once. */
    @Test
    void cudaLibraryRangesWorkWithoutAProfiler() {
        try {
            CudaKernels.load();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            assumeTrue(false, "librelat_cuda was not built or does not load here: " + e.getMessage());
        }
        assertEquals(0, CudaKernels.INSTANCE.profileRangePush("relat test range"));
        assertEquals(0, CudaKernels.INSTANCE.profileRangePush("nested"));
        assertEquals(0, CudaKernels.INSTANCE.profileRangePop());
        assertEquals(0, CudaKernels.INSTANCE.profileRangePop());
        assertEquals(1, CudaKernels.INSTANCE.profileRangePush(null));
        int start = CudaKernels.INSTANCE.profileStart();
        if (start != 0) {
            assertEquals(3, start, "RELAT_ERR_DEVICE without a GPU");
            assertTrue(CudaKernels.INSTANCE.lastError().contains("cudaProfilerStart"), CudaKernels.INSTANCE.lastError());
        } else {
            assertEquals(0, CudaKernels.INSTANCE.profileStop());
        }
    }

    @Test
    void profilerCountsPhasesAndPrintsTheTable() {
        PhaseProfiler p = new PhaseProfiler();
        p.questionStart();
        for (int i = 0; i < 3; i++) {
            p.begin(Phase.BACKWARD);
            p.end(Phase.BACKWARD);
        }
        p.begin(Phase.PREFILL);
        p.end(Phase.PREFILL);
        p.questionEnd();
        assertEquals(3, p.calls(Phase.BACKWARD));
        assertEquals(1, p.calls(Phase.PREFILL));
        assertEquals(0, p.calls(Phase.UPDATE));
        assertTrue(p.questionNanos() >= p.nanos(Phase.BACKWARD) + p.nanos(Phase.PREFILL));
        String table = p.table();
        assertEquals(Phase.values().length + 3, table.lines().count(), table);
        assertTrue(table.lines().anyMatch(l -> l.matches("backward\\s+3\\s.*")), table);
    }
}
