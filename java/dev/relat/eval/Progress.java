package dev.relat.eval;

import java.io.PrintStream;
import java.time.Duration;

/** A progress bar with an ETA on stderr; one line per update when stderr is not a terminal. */
final class Progress {
    private final PrintStream out;
    private final int total;
    private final boolean terminal = System.console() != null;
    private final long start = System.nanoTime();
    private int done;
    private int fresh;

    Progress(PrintStream out, int total, int alreadyDone) {
        this.out = out;
        this.total = total;
        this.done = alreadyDone;
    }

    void step(String label) {
        done++;
        fresh++;
        long elapsed = System.nanoTime() - start;
        long eta = fresh == 0 ? 0 : elapsed / fresh * (total - done);
        int width = 30, filled = total == 0 ? width : width * done / total;
        String line = String.format("[%s%s] %d/%d %3.0f%% elapsed %s ETA %s  %s", "#".repeat(filled),
                "-".repeat(width - filled), done, total, total == 0 ? 100.0 : 100.0 * done / total,
                format(elapsed), format(eta), label);
        out.print(terminal ? "\r" + line : line + "\n");
        if (terminal && done == total) out.println();
        out.flush();
    }

    private static String format(long nanos) {
        Duration d = Duration.ofNanos(nanos);
        return d.toHours() > 0 ? String.format("%dh%02dm", d.toHours(), d.toMinutesPart())
                : String.format("%dm%02ds", d.toMinutesPart(), d.toSecondsPart());
    }
}
