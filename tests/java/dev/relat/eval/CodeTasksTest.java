package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Code presets: parsing HumanEval and MBPP lines, code extraction, and the harness judging by execution. */
class CodeTasksTest {
    @TempDir Path dir;

    private static byte[] sample() throws Exception {
        try (InputStream in = CodeTasksTest.class.getResourceAsStream("/dev/relat/eval/humaneval-sample.jsonl")) {
            return in.readAllBytes();
        }
    }

    @Test
    void extractsTheLastFencedPythonBlockElseTheWholeAnswer() {
        assertEquals("x = 2\n", CodeTasks.extractCode("a\n```python\nx = 1\n```\nthen\n```python\nx = 2\n```\nend"));
        assertEquals("y = 1\n", CodeTasks.extractCode("```\ny = 1\n```"));
        assertEquals("z = 1\n", CodeTasks.extractCode("```python\nz = 1\n```\n```text\nnot code\n```"));
        assertEquals("return 1", CodeTasks.extractCode("return 1"));
        assertEquals("def f():\n    return 1", CodeTasks.extractCode("Sure:\n```python\ndef f():\n    return 1"));
        assertEquals("x = 3\n", CodeTasks.extractCode("```py\nx = 3\n```"));
        assertEquals("", Answers.extract("", AnswerKind.CODE));
        assertFalse(Answers.matches("x", "x", AnswerKind.CODE));
    }

    @Test
    void humanEvalLinesBecomeCodeQuestions() throws Exception {
        Dataset d = Dataset.parse(sample(), Dataset.Format.preset("humaneval"));
        assertEquals(List.of(), d.problems());
        assertEquals(3, d.questions().size());
        Question q = d.questions().get(1);
        assertEquals("RelatSample/1", q.id());
        assertEquals(AnswerKind.CODE, q.kind());
        assertTrue(q.text().contains("def count_vowels(s: str) -> int:"), q.text());
        CodeTasks.Problem p = CodeTasks.Problem.fromReference(q.reference());
        assertEquals(CodeTasks.HUMANEVAL, p.style());
        assertEquals("count_vowels", p.entryPoint());
        assertTrue(p.tests().strip().endsWith("check(count_vowels)"), p.tests());
        // a completion continues the prompt; a whole function stands alone
        assertEquals(p.prompt() + "    return 0\n", p.solution("    return 0\n"));
        assertEquals("def count_vowels(s):\n    return 0\n",
                p.solution("```python\ndef count_vowels(s):\n    return 0\n```"));
    }

    @Test
    void mbppLinesWithATestListOrMbppPlusTestCode() {
        String mbpp = "{\"task_id\": 11, \"text\": \"Write a function to remove the first and last occurrence of a"
                + " given character from the string.\", \"code\": \"def remove_Occ(s,ch):\\n    return s\","
                + " \"test_list\": [\"assert remove_Occ(\\\"hello\\\",\\\"l\\\") == \\\"heo\\\"\","
                + " \"assert remove_Occ(\\\"abcda\\\",\\\"a\\\") == \\\"bcd\\\"\"], \"test_setup_code\": \"\","
                + " \"challenge_test_list\": []}\n"
                + "{\"task_id\": \"Mbpp/2\", \"prompt\": \"Write a function to find the shared elements from the"
                + " given two lists.\", \"entry_point\": \"similar_elements\", \"test_list\": [\"assert"
                + " set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\"], \"test\": \"import math\\n"
                + "assert set(similar_elements((1, 2),(2, 3))) == {2}\\n\"}\n"
                + "{\"task_id\": \"none\", \"prompt\": \"no tests here\"}\n";
        Dataset d = Dataset.parse(mbpp.getBytes(StandardCharsets.UTF_8), Dataset.Format.preset("mbpp"));
        assertEquals(2, d.questions().size());
        assertEquals(1, d.problems().size());
        assertTrue(d.problems().get(0).message().contains("no tests"), d.problems().toString());
        CodeTasks.Problem a = CodeTasks.Problem.fromReference(d.questions().get(0).reference());
        assertEquals(CodeTasks.MBPP, a.style());
        assertEquals("remove_Occ", a.entryPoint());
        assertTrue(a.tests().contains("assert remove_Occ(\"abcda\",\"a\") == \"bcd\""), a.tests());
        assertTrue(d.questions().get(0).text().contains("Your code should pass this test:\nassert remove_Occ("));
        CodeTasks.Problem b = CodeTasks.Problem.fromReference(d.questions().get(1).reference());
        assertEquals("similar_elements", b.entryPoint());
        assertEquals("import math\nassert set(similar_elements((1, 2),(2, 3))) == {2}\n", b.tests());
        assertEquals("def f(): pass\n", b.solution("```python\ndef f(): pass\n```"));
        assertEquals("similar_elements", CodeTasks.entryPoint(null, "assert set(similar_elements((1,), (1,)))"));
        assertNull(CodeTasks.entryPoint(null, "assert True"));
    }

    @Test
    void evaluatorJudgesCodeByExecutionAndResumes() throws Exception {
        Path data = dir.resolve("he.jsonl");
        Files.write(data, sample());
        Dataset d = Dataset.read(data, Dataset.Format.preset("humaneval"));
        assertThrows(IllegalStateException.class, () -> new Evaluator((q, m) -> null, new PrintStream(
                new ByteArrayOutputStream())).run(d, "he", List.of("single"), dir.resolve("none"), 0));
        CodeSandbox box = CodeSandbox.open(CodeSandbox.Limits.DEFAULT.withWallClock(Duration.ofSeconds(3)), false);
        AtomicInteger calls = new AtomicInteger();
        // "good" answers every problem with its canonical solution; "bad" returns None
        Solver solver = (q, method) -> {
            calls.incrementAndGet();
            JsonObject line = JsonParser.parseString(lineOf(q)).getAsJsonObject();
            String body = method.equals("good") ? line.get("canonical_solution").getAsString() : "    return None\n";
            return new Solver.Outcome("```python\n" + body + "```", List.of(), null);
        };
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Path out = dir.resolve("out");
        List<MethodSummary> s = new Evaluator(solver, new PrintStream(log)).withSandbox(box)
                .run(d, "he", List.of("good", "bad"), out, 0);
        assertEquals(3, s.get(0).correct());
        assertEquals(0, s.get(1).correct());
        for (String line : Files.readAllLines(out.resolve("results.jsonl"))) {
            JsonReader strict = new JsonReader(new StringReader(line));
            strict.setStrictness(Strictness.STRICT);
            JsonObject o = JsonParser.parseReader(strict).getAsJsonObject();
            JsonObject exec = o.getAsJsonObject("exec");
            boolean good = o.get("method").getAsString().equals("good");
            assertEquals(good ? "pass" : "fail", exec.get("verdict").getAsString(), line);
            assertEquals(good, o.get("correct").getAsBoolean());
            if (!good) assertTrue(exec.get("stderrTail").getAsString().contains("AssertionError"), line);
            assertFalse(exec.get("isolation").getAsString().equals("none"), line);
        }
        assertEquals(6, calls.get());
        new Evaluator(solver, new PrintStream(log)).withSandbox(box).run(d, "he", List.of("good", "bad"), out, 0);
        assertEquals(6, calls.get(), "resumed: nothing redone");
    }

    private static String lineOf(Question q) {
        try {
            String all = new String(sample(), StandardCharsets.UTF_8);
            return all.split("\n")[q.line() - 1];
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
