package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Canned answers to a HumanEval-format problem (the shipped sample's running_max), each run in the
 * sandbox and classified; after each: no process of it left, its temp dir gone, nothing written
 * outside it.
 */
class CodeSandboxTest {
    private static final Duration WALL = Duration.ofSeconds(2);
    private static CodeSandbox box;
    private static CodeTasks.Problem problem;
    private static final List<String> TABLE = new ArrayList<>();

    @BeforeAll
    static void open() throws Exception {
        try {
            box = CodeSandbox.open(CodeSandbox.Limits.DEFAULT.withWallClock(WALL).withAddressSpace(1L << 30), false);
        } catch (CodeSandbox.Unavailable e) {
            fail("the code sandbox cannot run here (python3 and util-linux unshare/prlimit/setpriv are needed): "
                    + e.getMessage());
        }
        try (InputStream in = CodeSandboxTest.class.getResourceAsStream("/dev/relat/eval/humaneval-sample.jsonl")) {
            Dataset d = Dataset.parse(in.readAllBytes(), Dataset.Format.preset("humaneval"));
            problem = CodeTasks.Problem.fromReference(d.questions().get(0).reference());
        }
        assertEquals("running_max", problem.entryPoint());
    }

    @AfterAll
    static void table() {
        System.out.println("| case | verdict | reason | wall ms | leftover processes |\n|---|---|---|---|---|");
        TABLE.forEach(System.out::println);
    }

    /** A model's answer: prose, then the code in a fenced block. */
    private static String answer(String body) {
        return "Here is my solution.\n\n```python\nfrom typing import List\n\n\ndef running_max(numbers: List[int])"
                + " -> List[int]:\n" + body + "```\n\nIt keeps the best value so far.";
    }

    private static final String CORRECT = """
                with open('scratch.txt', 'w') as f:  # the working directory is writable
                    f.write('ok')
                result, best = [], None
                for n in numbers:
                    best = n if best is None else max(best, n)
                    result.append(best)
                return result
            """;

    private record Run(CodeSandbox.Outcome outcome, long leftovers) {}

    private Run run(String name, String answer) throws Exception {
        Set<Path> before = sandboxDirs();
        CodeSandbox.Outcome o = box.run(problem.solution(answer), problem.tests(), problem.entryPoint());
        Thread.sleep(200);  // the kernel reaps a dead namespace asynchronously
        long left = leftovers();
        TABLE.add(String.format(Locale.ROOT, "| %s | %s | %s | %d | %d |", name, o.verdict().json(),
                o.reason().replace("|", "/"), o.wallMillis(), left));
        assertEquals(0, left, name + ": processes left running: " + leftoverList());
        Set<Path> after = sandboxDirs();
        after.removeAll(before);
        assertEquals(Set.of(), after, name + ": temp dir not removed");
        return new Run(o, left);
    }

    /** Processes of any sandbox run: the wrapper names the temp dir, python runs program.py. */
    private static long leftovers() {
        return leftoverList().size();
    }

    private static List<String> leftoverList() {
        return ProcessHandle.allProcesses().filter(ProcessHandle::isAlive)
                .map(h -> h.pid() + " " + h.info().commandLine().orElse(""))
                .filter(c -> c.contains("relat-sandbox-") || c.contains("program.py")).toList();
    }

    private static Set<Path> sandboxDirs() throws IOException {
        try (Stream<Path> s = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            return s.filter(p -> p.getFileName().toString().startsWith("relat-sandbox-")).collect(Collectors.toSet());
        }
    }

    @Test
    void correctPasses() throws Exception {
        Run r = run("correct", answer(CORRECT));
        assertEquals(CodeSandbox.Verdict.PASS, r.outcome().verdict(), r.outcome().toString());
    }

    @Test
    void completionOfThePromptPasses() throws Exception {
        String completion = "    return [max(numbers[:i + 1]) for i in range(len(numbers))]\n";
        assertTrue(problem.solution(completion).startsWith(problem.prompt()));
        Run r = run("completion (no def)", completion);
        assertEquals(CodeSandbox.Verdict.PASS, r.outcome().verdict(), r.outcome().toString());
    }

    @Test
    void wrongFails() throws Exception {
        Run r = run("wrong", answer("    return sorted(numbers)\n"));
        assertEquals(CodeSandbox.Verdict.FAIL, r.outcome().verdict(), r.outcome().toString());
        assertTrue(r.outcome().reason().startsWith("AssertionError"), r.outcome().reason());
        assertTrue(r.outcome().stderrTail().contains("AssertionError"), r.outcome().stderrTail());
    }

    @Test
    void infiniteLoopTimesOut() throws Exception {
        Run r = run("infinite loop", answer("    while True:\n        pass\n"));
        assertEquals(CodeSandbox.Verdict.TIMEOUT, r.outcome().verdict(), r.outcome().toString());
        assertTrue(r.outcome().wallMillis() >= WALL.toMillis() && r.outcome().wallMillis() < WALL.toMillis() + 3000,
                "wall " + r.outcome().wallMillis());
    }

    @Test
    void memoryHogHitsTheAddressSpaceLimit() throws Exception {
        Run r = run("memory hog", answer("    x = bytearray(10 ** 10)\n    return numbers\n"));
        assertEquals(CodeSandbox.Verdict.ERROR, r.outcome().verdict(), r.outcome().toString());
        assertTrue(r.outcome().reason().startsWith("memory limit"), r.outcome().reason());
        assertTrue(r.outcome().wallMillis() < WALL.toMillis(), "wall " + r.outcome().wallMillis());
    }

    @Test
    void forkBombHitsTheProcessLimit() throws Exception {
        Run r = run("fork bomb", answer("    import os\n    while True:\n        os.fork()\n"));
        CodeSandbox.Outcome o = r.outcome();
        assertTrue(o.verdict() == CodeSandbox.Verdict.ERROR && o.reason().startsWith("process limit")
                || o.verdict() == CodeSandbox.Verdict.TIMEOUT, o.toString());
    }

    @Test
    void socketHasNoNetwork() throws Exception {
        // It returns the right answer only when the connection succeeds.
        Run r = run("opens a socket", answer("""
                    import socket
                    socket.create_connection(('1.1.1.1', 53), timeout=1).close()
                    return [max(numbers[:i + 1]) for i in range(len(numbers))]
                """));
        assertEquals(CodeSandbox.Verdict.FAIL, r.outcome().verdict(), r.outcome().toString());
        assertTrue(r.outcome().reason().contains("Network is unreachable"), r.outcome().reason());
    }

    @Test
    void writeOutsideItsDirectoryIsRefused() throws Exception {
        String unique = "relat-outside-" + UUID.randomUUID();
        Path tmp = Path.of("/tmp", unique), home = Path.of(System.getProperty("user.home"), unique);
        Path parentFile = Path.of(System.getProperty("java.io.tmpdir"), unique + ".txt");
        Run r = run("writes outside its dir", answer("""
                    import os
                    for path in [%s, %s, %s, '../%s']:
                        try:
                            with open(path, 'w') as f:
                                f.write('escaped')
                        except OSError as e:
                            print(path, e, file=__import__('sys').stderr)
                    os.makedirs(%s)
                    return [max(numbers[:i + 1]) for i in range(len(numbers))]
                """.formatted(quote(tmp + ".txt"), quote(home.toString()), quote(parentFile.toString()),
                unique + "-up.txt", quote(tmp.toString()))));
        assertEquals(CodeSandbox.Verdict.FAIL, r.outcome().verdict(), r.outcome().toString());
        assertTrue(r.outcome().reason().contains("Read-only file system"), r.outcome().reason());
        for (Path p : List.of(tmp, Path.of(tmp + ".txt"), home, parentFile,
                Path.of(System.getProperty("java.io.tmpdir"), unique + "-up.txt"))) {
            assertFalse(Files.exists(p), p + " was written");
        }
    }

    @Test
    void backgroundChildIsKilledWhenTheProgramEnds() throws Exception {
        Run r = run("leaves a daemon", answer("""
                    import os, time
                    if os.fork() == 0:
                        os.setsid()
                        if os.fork() == 0:
                            time.sleep(60)
                        os._exit(0)
                    return [max(numbers[:i + 1]) for i in range(len(numbers))]
                """));
        assertEquals(CodeSandbox.Verdict.PASS, r.outcome().verdict(), r.outcome().toString());
    }

    @Test
    void syntaxErrorAndMissingEntryPointAreErrors() throws Exception {
        Run syntax = run("syntax error", "```python\ndef running_max(numbers) return numbers\n```");
        assertEquals(CodeSandbox.Verdict.ERROR, syntax.outcome().verdict(), syntax.outcome().toString());
        assertTrue(syntax.outcome().reason().contains("SyntaxError"), syntax.outcome().reason());
        CodeSandbox.Outcome missing = box.run("def other(x):\n    return x\n", problem.tests(), problem.entryPoint());
        assertEquals(CodeSandbox.Verdict.ERROR, missing.verdict(), missing.toString());
        assertEquals("entry point 'running_max' is not defined", missing.reason());
    }

    @Test
    void exitingEarlyIsNotAPass() throws Exception {
        Run r = run("exit(0) before tests", answer("    return numbers\nimport sys\nsys.exit(0)\n"));
        assertEquals(CodeSandbox.Verdict.ERROR, r.outcome().verdict(), r.outcome().toString());
        assertNotEquals(CodeSandbox.Verdict.PASS, run("exit(0) in tests",
                answer("    raise SystemExit(0)\n")).outcome().verdict());
    }

    @Test
    void withoutNamespacesItRefusesUnlessAllowedThenStillKillsTheGroup() throws Exception {
        CodeSandbox.Limits limits = CodeSandbox.Limits.DEFAULT.withWallClock(WALL).withAddressSpace(1L << 30);
        CodeSandbox.Unavailable refused = org.junit.jupiter.api.Assertions.assertThrows(CodeSandbox.Unavailable.class,
                () -> CodeSandbox.open(limits, false, List.of()));
        assertTrue(refused.getMessage().contains("no network namespace")
                && refused.getMessage().contains("--allow-unsandboxed-exec"), refused.getMessage());
        CodeSandbox open = CodeSandbox.open(limits, true, List.of());
        assertEquals(CodeSandbox.Isolation.NONE, open.isolation());
        CodeSandbox.Outcome ok = open.run(problem.solution(answer(CORRECT)), problem.tests(), problem.entryPoint());
        assertEquals(CodeSandbox.Verdict.PASS, ok.verdict(), ok.toString());
        CodeSandbox.Outcome loop = open.run(problem.solution(answer(
                "    import os\n    os.fork()\n    while True:\n        pass\n")), problem.tests(), problem.entryPoint());
        Thread.sleep(200);
        TABLE.add(String.format(Locale.ROOT, "| unsandboxed: two looping processes | %s | %s | %d | %d |",
                loop.verdict().json(), loop.reason(), loop.wallMillis(), leftovers()));
        assertEquals(CodeSandbox.Verdict.TIMEOUT, loop.verdict(), loop.toString());
        assertEquals(List.of(), leftoverList(), "the process group is killed");
    }

    private static String quote(String s) {
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
