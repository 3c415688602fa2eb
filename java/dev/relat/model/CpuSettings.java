package dev.relat.model;

import org.bytedeco.pytorch.global.torch;

/**
 * Process-wide CPU settings the model applies when it loads. libtorch inside a JVM starts with
 * one intra-op thread, so its element-wise ops and GEMMs would leave the other cores idle:
 * {@link #configure()} sets it to every core unless overridden.
 *
 * <ul>
 *   <li>{@code -Drelat.threads=N} (or the environment variable {@code RELAT_THREADS}): libtorch's
 *       intra-op threads; 0 leaves libtorch's own setting alone. Default: every core.
 *   <li>{@code -Drelat.fewRowKernel=false}: projections of 1 to 8 rows go to libtorch's linear /
 *       matmul instead of relat's few-row kernel (for A/B measurements).
 * </ul>
 */
final class CpuSettings {
    static final String THREADS = "relat.threads";
    static final boolean FEW_ROW_KERNEL = !"false".equals(System.getProperty("relat.fewRowKernel"));

    private static boolean configured;

    private CpuSettings() {}

    /** Sets libtorch's intra-op threads once per process. */
    static synchronized void configure() {
        if (configured) return;
        int threads = threads(System.getProperty(THREADS), System.getenv("RELAT_THREADS"),
                Runtime.getRuntime().availableProcessors());
        if (threads > 0 && torch.get_num_threads() != threads) torch.set_num_threads(threads);
        configured = true;
    }

    /** The property wins over the environment; neither: the cores. 0 = leave libtorch alone. */
    static int threads(String property, String environment, int cores) {
        String value = property != null ? property : environment;
        String source = property != null ? "-D" + THREADS : "RELAT_THREADS";
        if (value == null || value.isBlank()) return cores;
        try {
            int n = Integer.parseInt(value.strip());
            if (n >= 0 && n <= 4096) return n;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(source + "=" + value + ": expected a thread count in 0..4096 "
                + "(0 leaves libtorch's setting alone)");
    }
}
