package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CpuSettingsTest {
    @Test
    void threadsComeFromThePropertyThenTheEnvironmentThenTheCores() {
        assertEquals(3, CpuSettings.threads("3", "5", 16));
        assertEquals(5, CpuSettings.threads(null, "5", 16));
        assertEquals(16, CpuSettings.threads(null, null, 16));
        assertEquals(16, CpuSettings.threads(" ", null, 16));
        assertEquals(0, CpuSettings.threads("0", null, 16), "0 leaves libtorch's setting alone");
    }

    @Test
    void aBadThreadCountNamesItsSource() {
        IllegalArgumentException p = assertThrows(IllegalArgumentException.class, () -> CpuSettings.threads("two", null, 2));
        assertTrue(p.getMessage().startsWith("-Drelat.threads=two"), p.getMessage());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CpuSettings.threads(null, "-1", 2));
        assertTrue(e.getMessage().startsWith("RELAT_THREADS=-1"), e.getMessage());
    }
}
