package dev.relat.eval;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Code-generation benchmarks: HumanEval(+) and MBPP(+) lines as questions, the code in a model's
 * answer, and the program that tests it.
 * <ul>
 * <li>HumanEval ({@code task_id}, {@code prompt}: a signature and docstring, {@code entry_point},
 * {@code test}: a {@code check(candidate)} function): the model completes the prompt; the program
 * is the answer's code (alone when it defines the entry point, else appended to the prompt), then
 * {@code test}, then {@code check(entry_point)}.</li>
 * <li>MBPP(+) ({@code task_id}, {@code prompt} or {@code text}, {@code test} (MBPP+'s test code) or
 * {@code test_list} with {@code test_imports} / {@code test_setup_code}): the model writes the
 * function from the description and the first test; the program is the code, then the tests.</li>
 * </ul>
 * The question's reference is a JSON object with the style, prompt, entry point and tests, so that
 * its hash changes with any of them.
 */
public final class CodeTasks {
    /** HumanEval: the answer completes the prompt. */
    public static final String HUMANEVAL = "humaneval";
    /** MBPP: the answer is the whole program under test. */
    public static final String MBPP = "mbpp";

    private static final Pattern FENCE = Pattern.compile("```[ \\t]*([\\w+#.-]*)[^\\n]*\\n(.*?)```", Pattern.DOTALL);
    private static final Pattern CALL = Pattern.compile("(?<![\\w.])([A-Za-z_]\\w*)\\s*\\(");
    private static final Set<String> NOT_ENTRY = Set.of("set", "sorted", "abs", "len", "list", "tuple", "round", "str",
            "int", "float", "all", "any", "dict", "frozenset", "isclose", "math", "type", "isinstance", "sum", "max",
            "min", "bool", "repr", "assert");

    /** What a code question is tested with. */
    public record Problem(String style, String prompt, String entryPoint, String tests) {
        String toReference() {
            JsonObject o = new JsonObject();
            o.addProperty("style", style);
            o.addProperty("prompt", prompt);
            o.addProperty("entry_point", entryPoint);
            o.addProperty("tests", tests);
            return o.toString();
        }

        public static Problem fromReference(String reference) {
            JsonObject o = JsonParser.parseString(reference).getAsJsonObject();
            return new Problem(o.get("style").getAsString(), o.get("prompt").getAsString(),
                    o.has("entry_point") && !o.get("entry_point").isJsonNull() ? o.get("entry_point").getAsString() : null,
                    o.get("tests").getAsString());
        }

        /** The code to run before the tests, from a model's answer. */
        public String solution(String answer) {
            String code = extractCode(answer);
            if (style.equals(HUMANEVAL) && (entryPoint == null
                    || !Pattern.compile("(?m)^\\s*def\\s+" + Pattern.quote(entryPoint) + "\\s*\\(").matcher(code).find())) {
                return prompt + code;  // a completion of the prompt's body
            }
            return code;
        }
    }

    private CodeTasks() {}

    /** The code of the answer's last fenced block (```python or plain ```), else the whole answer. */
    public static String extractCode(String answer) {
        String last = null, lastPython = null;
        Matcher m = FENCE.matcher(answer);
        while (m.find()) {
            String lang = m.group(1).toLowerCase();
            if (lang.isEmpty() || lang.equals("python") || lang.equals("py") || lang.equals("python3")) {
                last = m.group(2);
                if (!lang.isEmpty()) lastPython = last;
            }
        }
        String code = lastPython != null ? lastPython : last;
        if (code == null) {  // an unclosed fence at the end (decoding stopped): what follows it
            int open = answer.lastIndexOf("```");
            if (open >= 0) {
                int nl = answer.indexOf('\n', open);
                String rest = nl < 0 ? "" : answer.substring(nl + 1);
                if (!rest.isBlank()) return rest;
            }
            return answer;
        }
        return code;
    }

    /** The question of one JSON line under a code preset (style from the fields present). */
    static Question question(JsonObject o, Dataset.Format format, int line, String id) {
        String entry = text(o, "entry_point");
        String prompt = text(o, format.questionField());
        if (prompt == null) prompt = text(o, "text");
        if (prompt == null) throw new IllegalArgumentException("missing question field '" + format.questionField() + "'");
        if (entry != null && text(o, "test") != null
                && Pattern.compile("(?m)^\\s*def\\s+" + Pattern.quote(entry) + "\\s*\\(").matcher(prompt).find()) {
            String tests = text(o, "test") + "\n\ncheck(" + entry + ")\n";
            Problem p = new Problem(HUMANEVAL, prompt, entry, tests);
            String text = "Complete the following Python function. Answer with the complete function in a ```python"
                    + " code block.\n\n```python\n" + prompt + "```";
            return new Question(id, text, p.toReference(), AnswerKind.CODE, line);
        }
        List<String> asserts = strings(o.get("test_list"));
        String tests;
        if (text(o, "test") != null) {
            tests = text(o, "test");
        } else if (!asserts.isEmpty()) {
            StringBuilder sb = new StringBuilder();
            for (String s : strings(o.get("test_imports"))) sb.append(s).append('\n');
            if (text(o, "test_setup_code") != null) sb.append(text(o, "test_setup_code")).append('\n');
            for (String s : asserts) sb.append(s).append('\n');
            tests = sb.toString();
        } else {
            throw new IllegalArgumentException("no tests: neither 'test' nor 'test_list'");
        }
        if (entry == null) entry = entryPoint(text(o, "code"), asserts.isEmpty() ? tests : String.join("\n", asserts));
        StringBuilder text = new StringBuilder(prompt.strip());
        String example = !asserts.isEmpty() ? asserts.get(0) : null;
        if (example != null) text.append("\nYour code should pass this test:\n").append(example.strip());
        else if (entry != null) text.append("\nThe function must be named ").append(entry).append('.');
        text.append("\nAnswer with the Python code in a ```python code block.");
        return new Question(id, text.toString(), new Problem(MBPP, prompt, entry, tests).toReference(),
                AnswerKind.CODE, line);
    }

    /** The function the tests call: one the reference code defines, else the first non-builtin call. */
    static String entryPoint(String code, String tests) {
        Set<String> called = new LinkedHashSet<>();
        Matcher m = CALL.matcher(tests);
        while (m.find()) if (!NOT_ENTRY.contains(m.group(1))) called.add(m.group(1));
        if (code != null) {
            Matcher d = Pattern.compile("(?m)^def\\s+([A-Za-z_]\\w*)\\s*\\(").matcher(code);
            List<String> defined = new ArrayList<>();
            while (d.find()) defined.add(d.group(1));
            for (String c : called) if (defined.contains(c)) return c;
        }
        return called.isEmpty() ? null : called.iterator().next();
    }

    private static String text(JsonObject o, String field) {
        JsonElement e = field == null ? null : o.get(field);
        if (e == null || e.isJsonNull() || !e.isJsonPrimitive()) return null;
        String s = e.getAsString();
        return s.isBlank() ? null : s;
    }

    private static List<String> strings(JsonElement e) {
        List<String> out = new ArrayList<>();
        if (e == null || e.isJsonNull()) return out;
        if (e.isJsonPrimitive()) {
            out.add(e.getAsString());
        } else if (e.isJsonArray()) {
            for (JsonElement x : (JsonArray) e) if (x.isJsonPrimitive()) out.add(x.getAsString());
        }
        return out;
    }
}
