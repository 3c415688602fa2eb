package dev.relat.profile;

import dev.relat.engine.Phase;
import dev.relat.engine.PhaseListener;
import java.util.EnumMap;
import java.util.Map;

/**
 * The {@code --profile} listener: one NVTX range per phase inside a "relat question" range, and
 * cudaProfilerStart / cudaProfilerStop around the question, so that
 * {@code nsys profile --capture-range=cudaProfilerApi} and {@code ncu --profile-from-start off}
 * capture exactly one question (see {@link Nvtx}; no-ops without CUDA). It also counts the calls
 * and wall time of every phase, for the breakdown table printed on the CPU.
 */
public final class PhaseProfiler implements PhaseListener {
    /** Name of the NVTX range around the whole question. */
    public static final String QUESTION_RANGE = "relat question";

    private final Map<Phase, long[]> stats = new EnumMap<>(Phase.class);  // {calls, nanos}
    private final Map<Phase, Long> openedAt = new EnumMap<>(Phase.class);
    private long questionStart;
    private long questionNanos;

    @Override
    public void questionStart() {
        Nvtx.start();
        Nvtx.push(QUESTION_RANGE);
        questionStart = System.nanoTime();
    }

    @Override
    public void questionEnd() {
        questionNanos += System.nanoTime() - questionStart;
        Nvtx.pop();
        Nvtx.stop();
    }

    @Override
    public void begin(Phase phase) {
        Nvtx.push(phase.label());
        openedAt.put(phase, System.nanoTime());
    }

    @Override
    public void end(Phase phase) {
        Long t0 = openedAt.remove(phase);
        Nvtx.pop();
        if (t0 == null) return;
        long[] s = stats.computeIfAbsent(phase, p -> new long[2]);
        s[0]++;
        s[1] += System.nanoTime() - t0;
    }

    /** How often a phase ran. */
    public long calls(Phase phase) {
        long[] s = stats.get(phase);
        return s == null ? 0 : s[0];
    }

    /** Wall time in a phase, summed over its calls. */
    public long nanos(Phase phase) {
        long[] s = stats.get(phase);
        return s == null ? 0 : s[1];
    }

    /** Wall time between questionStart and questionEnd, summed over questions. */
    public long questionNanos() {
        return questionNanos;
    }

    /** The phase breakdown as a text table: calls, total, mean per call, share of the question. */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("%-24s %6s %12s %12s %7s%n", "phase", "calls", "total ms", "mean ms", "share"));
        long phased = 0;
        for (Phase p : Phase.values()) {
            long calls = calls(p), nanos = nanos(p);
            phased += nanos;
            sb.append(String.format("%-24s %6d %12.1f %12s %6.1f%%%n", p.label(), calls, nanos / 1e6,
                    calls == 0 ? "-" : String.format("%.2f", nanos / 1e6 / calls), share(nanos)));
        }
        long other = Math.max(0, questionNanos - phased);
        sb.append(String.format("%-24s %6s %12.1f %12s %6.1f%%%n", "outside phases", "", other / 1e6, "", share(other)));
        sb.append(String.format("%-24s %6s %12.1f %12s %6.1f%%%n", "question", "", questionNanos / 1e6, "", 100.0));
        return sb.toString();
    }

    private double share(long nanos) {
        return questionNanos == 0 ? 0 : 100.0 * nanos / questionNanos;
    }
}
