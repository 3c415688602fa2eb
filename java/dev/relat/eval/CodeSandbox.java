package dev.relat.eval;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Runs a Python program (a model's code completed with a benchmark's tests) in a separate
 * {@code python3} process, isolated as far as this machine allows:
 * <ul>
 * <li>a fresh temporary working directory, deleted afterwards;</li>
 * <li>rlimits (prlimit): address space, CPU seconds, open files, processes, file size;</li>
 * <li>a wall-clock limit; on expiry the whole process group, the PID namespace and any descendant
 * left are killed with SIGKILL (and {@code timeout} kills it 2 s later should this JVM be gone);</li>
 * <li>{@link Isolation#NAMESPACES}: new network namespace (only a loopback that is down: no
 * network), new PID namespace (killing its first process kills every process in it), new mount
 * namespace in which every mount but the working directory is remounted read-only, and the code
 * runs as user nobody with no capabilities and no_new_privs. Without root the same is tried in a
 * new user namespace ({@link Isolation#USER_NAMESPACES}), the code keeping the caller's uid.</li>
 * </ul>
 * When no network namespace can be made, {@link #open} refuses unless the caller allows unsandboxed
 * execution ({@link Isolation#NONE}: rlimits, process group and temp dir only).
 */
public final class CodeSandbox {
    /** The outcome of one program. */
    public enum Verdict {
        PASS, FAIL, TIMEOUT, ERROR;

        public String json() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** How the program is isolated. */
    public enum Isolation {
        /** As root: network, PID and mount namespaces, read-only filesystem, user nobody. */
        NAMESPACES,
        /** Not root: the same inside a new user namespace, the code keeping its uid, no capabilities. */
        USER_NAMESPACES,
        /** Rlimits, process group and temp dir only: network and filesystem are open. */
        NONE
    }

    /** Limits of one run; sizes in bytes. */
    public record Limits(Duration wallClock, long addressSpace, int cpuSeconds, int openFiles, int processes,
            long fileSize) {
        public static final Limits DEFAULT = new Limits(Duration.ofSeconds(10), 2L << 30, 10, 64, 64, 64L << 20);

        public Limits withWallClock(Duration d) {
            return new Limits(d, addressSpace, (int) Math.max(1, Math.ceil(d.toMillis() / 1000.0)), openFiles,
                    processes, fileSize);
        }

        public Limits withAddressSpace(long bytes) {
            return new Limits(wallClock, bytes, cpuSeconds, openFiles, processes, fileSize);
        }
    }

    /**
     * One run: the verdict, why (e.g. "AssertionError", "memory limit (MemoryError)"), the exit
     * status (null on timeout), the last lines of stderr and the wall time.
     */
    public record Outcome(Verdict verdict, String reason, Integer exitCode, String stderrTail, long wallMillis) {}

    /** The sandbox cannot be used as asked; the message says why. */
    public static final class Unavailable extends Exception {
        Unavailable(String message) {
            super(message);
        }
    }

    static final int NOBODY = 65534;
    static final int STDERR_TAIL_LINES = 20;
    private static final int CAPTURE_LIMIT = 64 * 1024;
    private static final int SETUP_FAILED = 125;

    /** Set up in the new namespaces (as root there), then exec the program under prlimit and setpriv. */
    private static final String SETUP = """
            set -eu
            T=$1; PREFIX=$2; HIDE=$3; DROP=$4; shift 4
            fail() { echo "relat sandbox: $*" >&2; exit 125; }
            mount --make-rprivate / || fail "cannot make mounts private"
            [ "$DROP" = nobody ] && { chown -R 65534:65534 "$T" || fail "cannot chown $T"; }
            mount --bind "$T" "$T" || fail "cannot bind $T"
            if [ -n "$HIDE" ]; then
              mkdir "$T/.py" && mount --bind "$PREFIX" "$T/.py" || fail "cannot bind $PREFIX"
              mount -t tmpfs -o mode=755,size=1m relat-hide "$HIDE" || fail "cannot hide $HIDE"
              mkdir -p "$PREFIX" && mount --bind "$T/.py" "$PREFIX" || fail "cannot rebind $PREFIX"
              umount "$T/.py" && rmdir "$T/.py" || fail "cannot unmount $T/.py"
            fi
            for m in $(awk '{print $2}' /proc/self/mounts); do
              [ "$m" = "$T" ] && continue
              mount -o remount,bind,ro "$m" 2>/dev/null || true
            done
            for d in / /tmp /var/tmp /dev/shm /run "${T%/*}" "$HIDE"; do
              [ -n "$d" ] && [ -d "$d" ] && [ -w "$d" ] && fail "cannot make $d read-only"
            done
            [ -w "$T" ] || fail "$T is not writable"
            cd "$T"
            if [ "$DROP" = nobody ]; then
              exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \\
                --no-new-privs -- "$@"
            fi
            exec setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
            """;

    private final Isolation isolation;
    private final String python;
    private final String pythonPrefix;
    private final String hide;
    private final Limits limits;

    private CodeSandbox(Isolation isolation, String python, String pythonPrefix, String hide, Limits limits) {
        this.isolation = isolation;
        this.python = python;
        this.pythonPrefix = pythonPrefix;
        this.hide = hide;
        this.limits = limits;
    }

    public Isolation isolation() {
        return isolation;
    }

    public Limits limits() {
        return limits;
    }

    /**
     * A sandbox with the strongest isolation this machine allows; checks it by running python3
     * once. Throws {@link Unavailable} when python3 is missing, or when no network namespace can be
     * made and {@code allowUnsandboxed} is false (the message says why and names the flag).
     */
    public static CodeSandbox open(Limits limits, boolean allowUnsandboxed) throws Unavailable {
        boolean root = "root".equals(System.getProperty("user.name"));
        return open(limits, allowUnsandboxed, root ? List.of(Isolation.NAMESPACES, Isolation.USER_NAMESPACES)
                : List.of(Isolation.USER_NAMESPACES));
    }

    /** {@link #open(Limits, boolean)} trying only these isolations (tests: none, to see the refusal). */
    static CodeSandbox open(Limits limits, boolean allowUnsandboxed, List<Isolation> modes) throws Unavailable {
        String[] py = locatePython();
        String prefix = py[1];
        String hide = inaccessibleAncestor(prefix);
        List<String> why = new ArrayList<>();
        if (modes.isEmpty()) why.add("not tried");
        for (Isolation mode : modes) {
            CodeSandbox box = new CodeSandbox(mode, py[0], prefix, mode == Isolation.NAMESPACES ? hide : "",
                    limits);
            Outcome probe = box.run("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), 1)\n"
                    + "    print('network reachable')\nexcept OSError as e:\n    print('no network:', e)\n", "", null);
            if (probe.verdict() == Verdict.PASS) return box;
            why.add(mode.name().toLowerCase(Locale.ROOT) + ": " + probe.reason()
                    + (probe.stderrTail().isBlank() ? "" : " (" + lastLine(probe.stderrTail()) + ")"));
        }
        if (!allowUnsandboxed) {
            throw new Unavailable("cannot isolate generated code: no network namespace could be made ("
                    + String.join("; ", why) + "); the code would run with network access and a writable"
                    + " filesystem. Refusing to execute it; pass --allow-unsandboxed-exec to run it anyway"
                    + " (rlimits, process group and temp dir only)");
        }
        return new CodeSandbox(Isolation.NONE, py[0], prefix, "", limits);
    }

    /** The real python3 executable and its prefix (a pyenv shim resolved), or Unavailable. */
    private static String[] locatePython() throws Unavailable {
        try {
            Process p = new ProcessBuilder("python3", "-c",
                    "import os,sys; print(os.path.realpath(sys.executable)); print(os.path.realpath(sys.prefix))")
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new Unavailable("python3 did not answer within 30 s");
            }
            String[] lines = out.strip().split("\n");
            if (p.exitValue() != 0 || lines.length != 2) throw new Unavailable("python3 failed: " + out.strip());
            return new String[] {lines[0].strip(), lines[1].strip()};
        } catch (IOException e) {
            throw new Unavailable("python3 is needed to run generated code and was not found on PATH ("
                    + e.getMessage() + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Unavailable("interrupted");
        }
    }

    /** The topmost ancestor of the path that others cannot enter (e.g. /root), or "". */
    private static String inaccessibleAncestor(String path) {
        Path p = Path.of(path);
        for (int i = 1; i < p.getNameCount(); i++) {
            Path dir = p.getRoot().resolve(p.subpath(0, i));
            try {
                var perms = Files.getPosixFilePermissions(dir);
                if (!perms.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_EXECUTE)) return dir.toString();
            } catch (IOException | UnsupportedOperationException e) {
                return "";
            }
        }
        return "";
    }

    /**
     * Runs {@code solution}, then (when the entry point is defined) {@code tests}, in a fresh
     * directory. PASS: exit 0 after every test ran; FAIL: the tests ran and failed (an assertion or
     * any exception); TIMEOUT: the wall-clock limit; ERROR: the code did not get to the tests (syntax
     * error, exception at import, missing entry point) or hit a limit (memory, CPU, processes, open
     * files), the reason says which.
     *
     * @param entryPoint the function the tests call, checked before they run; null for none
     */
    public Outcome run(String solution, String tests, String entryPoint) {
        String nonce = UUID.randomUUID().toString().replace("-", "");
        String start = "relat-tests-start-" + nonce, end = "relat-tests-end-" + nonce;
        StringBuilder program = new StringBuilder(solution).append("\n\n\n");
        program.append("import sys as _relat_sys\n");
        if (entryPoint != null && !entryPoint.isBlank()) {
            program.append("if '").append(entryPoint).append("' not in globals():\n")
                    .append("    _relat_sys.stderr.write(\"entry point '").append(entryPoint)
                    .append("' is not defined\\n\")\n    _relat_sys.exit(3)\n");
        }
        program.append("_relat_sys.stderr.write('").append(start).append("\\n'); _relat_sys.stderr.flush()\n");
        program.append("del _relat_sys\n\n").append(tests).append("\n\n\n");
        program.append("import sys as _relat_sys\n_relat_sys.stdout.flush()\n_relat_sys.stderr.write('")
                .append(end).append("\\n')\n");

        long t0 = System.nanoTime();
        Path dir = null;
        try {
            dir = Files.createTempDirectory("relat-sandbox-");
            Files.writeString(dir.resolve("program.py"), program, UTF_8);
            return execute(dir, start, end, t0);
        } catch (IOException e) {
            return new Outcome(Verdict.ERROR, "sandbox failed: " + e.getMessage(), null, "", millis(t0));
        } finally {
            if (dir != null) deleteTree(dir);
        }
    }

    private Outcome execute(Path dir, String start, String end, long t0) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("setsid");  // its own session and process group (Java's child is never a group leader)
        // A watchdog that outlives this JVM: if it is killed mid-run, the program still ends.
        cmd.addAll(List.of("timeout", "--signal=KILL", (limits.wallClock().toMillis() + 2000) / 1000 + "s"));
        List<String> limited = List.of("prlimit", "--as=" + limits.addressSpace(),
                "--cpu=" + limits.cpuSeconds() + ":" + (limits.cpuSeconds() + 1), "--nofile=" + limits.openFiles(),
                "--nproc=" + limits.processes(), "--fsize=" + limits.fileSize(), "--core=0", "--",
                python, "-I", "-B", "program.py");
        String abs = dir.toAbsolutePath().toRealPath().toString();
        switch (isolation) {
            case NAMESPACES, USER_NAMESPACES -> {
                cmd.add("unshare");
                if (isolation == Isolation.USER_NAMESPACES) cmd.addAll(List.of("--user", "--map-root-user"));
                cmd.addAll(List.of("--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                        "/bin/sh", "-c", SETUP, "relat-sandbox", abs, pythonPrefix, hide,
                        isolation == Isolation.NAMESPACES ? "nobody" : "keep"));
                cmd.addAll(limited);
            }
            case NONE -> cmd.addAll(limited);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
        pb.environment().clear();
        pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin");
        pb.environment().put("HOME", abs);
        pb.environment().put("TMPDIR", abs);
        pb.environment().put("LANG", "C.UTF-8");
        pb.environment().put("OPENBLAS_NUM_THREADS", "1");
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Process p = pb.start();
        Tail out = Tail.drain(p.getInputStream());
        Tail err = Tail.drain(p.getErrorStream());
        boolean finished;
        try {
            finished = p.waitFor(limits.wallClock().toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            finished = false;
        }
        if (!finished) kill(p);
        String stderr = err.text(), stdout = out.text();
        long wall = millis(t0);
        killLeftovers(p);
        String tail = lastLines(stderr, STDERR_TAIL_LINES);
        if (!finished) {
            return new Outcome(Verdict.TIMEOUT, "wall-clock limit of " + seconds(limits.wallClock()) + " exceeded",
                    null, tail, wall);
        }
        int code = p.exitValue();
        return classify(code, stderr, tail, start, end, wall);
    }

    private Outcome classify(int code, String stderr, String tail, String start, String end, long wall) {
        boolean started = stderr.contains(start), ended = stderr.contains(end);
        String exception = lastException(stderr);
        if (code == 0 && started && ended) return new Outcome(Verdict.PASS, "passed", 0, tail, wall);
        String limit = limitHit(code, stderr, exception);
        if (limit != null) return new Outcome(Verdict.ERROR, limit, code, tail, wall);
        if (code == SETUP_FAILED && stderr.contains("relat sandbox:")) {
            return new Outcome(Verdict.ERROR, "sandbox setup failed: " + lastLine(stderr), code, tail, wall);
        }
        if (!started) {
            String why = stderr.contains("' is not defined\n") && code == 3 && exception == null
                    ? lastLine(stderr)
                    : exception != null ? "before the tests: " + exception
                    : code == 0 ? "exited before the tests" : "exit status " + code + " before the tests";
            return new Outcome(Verdict.ERROR, why, code, tail, wall);
        }
        if (code == 0) return new Outcome(Verdict.FAIL, "exited during the tests", 0, tail, wall);
        return new Outcome(Verdict.FAIL, exception != null ? exception : code > 128
                ? "killed by signal " + (code - 128) : "exit status " + code, code, tail, wall);
    }

    /** Which limit ended the program, or null. */
    private String limitHit(int code, String stderr, String exception) {
        if (code == 128 + 24 || code == 128 + 9 && !stderr.contains("Traceback")) {
            return "CPU time limit (" + limits.cpuSeconds() + " s) or killed (signal " + (code - 128) + ")";
        }
        if (exception == null) return null;
        if (exception.startsWith("MemoryError")) {
            return "memory limit (" + (limits.addressSpace() >> 20) + " MiB address space): " + exception;
        }
        if (exception.startsWith("BlockingIOError") && stderr.contains("fork")
                || exception.contains("Resource temporarily unavailable")) {
            return "process limit (" + limits.processes() + "): " + exception;
        }
        if (exception.contains("Too many open files")) return "open-file limit (" + limits.openFiles() + "): " + exception;
        if (exception.contains("File too large")) return "file-size limit: " + exception;
        return null;
    }

    /** The last "SomeError: message" line of a Python traceback in the text, or null. */
    static String lastException(String stderr) {
        String[] lines = stderr.split("\n");
        boolean traceback = false;
        String last = null;
        for (String line : lines) {
            if (line.startsWith("Traceback (most recent call last)")) traceback = true;
            else if (traceback && !line.isEmpty() && !Character.isWhitespace(line.charAt(0))
                    && line.matches("^[A-Za-z_][\\w.]*(Error|Exception|Exit|Interrupt|Warning)?(:.*)?$")) {
                last = line.strip();
                traceback = false;
            } else if (line.matches("^(SyntaxError|IndentationError|TabError): .*$")) {
                last = line.strip();  // a compile error is reported without a traceback
            }
        }
        return last;
    }

    private void kill(Process p) {
        List<ProcessHandle> all = new ArrayList<>(p.descendants().toList());
        try {  // the whole group: setsid made the process its leader
            new ProcessBuilder("kill", "-KILL", "--", "-" + p.pid()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(5, TimeUnit.SECONDS);
        } catch (IOException e) {
            // fall through to the handles
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        p.destroyForcibly();  // timeout, then unshare --kill-child: its child, the PID namespace's init, dies, and with it the namespace
        for (ProcessHandle h : all) h.destroyForcibly();
        try {
            p.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A second sweep: anything still descending from the process (it may have been reparented). */
    private static void killLeftovers(Process p) {
        for (ProcessHandle h : p.descendants().toList()) h.destroyForcibly();
    }

    private static void deleteTree(Path dir) {
        try {
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    Files.deleteIfExists(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the sandbox directory " + dir, e);
        }
    }

    private static long millis(long t0) {
        return (System.nanoTime() - t0) / 1_000_000;
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    static String lastLines(String text, int n) {
        Deque<String> keep = new ArrayDeque<>();
        for (String line : text.split("\n")) {
            if (line.startsWith("relat-tests-")) continue;  // the harness's markers
            keep.addLast(line);
            if (keep.size() > n) keep.removeFirst();
        }
        return String.join("\n", keep).strip();
    }

    private static String lastLine(String text) {
        return lastLines(text, 1);
    }

    /** Reads a stream to its end on a daemon thread, keeping the first and last bytes. */
    private static final class Tail {
        private final StringBuilder head = new StringBuilder();
        private final Deque<byte[]> tail = new ArrayDeque<>();
        private final Thread thread;
        private long bytes;

        private Tail(InputStream in) {
            thread = new Thread(() -> {
                byte[] buf = new byte[8192];
                try (in) {
                    for (int n; (n = in.read(buf)) > 0; ) add(buf, n);
                } catch (IOException e) {
                    // the process is gone
                }
            }, "relat-sandbox-reader");
            thread.setDaemon(true);
        }

        static Tail drain(InputStream in) {
            Tail t = new Tail(in);
            t.thread.start();
            return t;
        }

        private synchronized void add(byte[] buf, int n) {
            byte[] chunk = java.util.Arrays.copyOf(buf, n);
            tail.addLast(chunk);
            bytes += n;
            while (bytes - tail.peekFirst().length >= CAPTURE_LIMIT) bytes -= tail.removeFirst().length;
        }

        String text() {
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            synchronized (this) {
                java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
                for (byte[] b : tail) all.writeBytes(b);
                return head + all.toString(UTF_8);
            }
        }
    }
}
