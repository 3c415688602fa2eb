package dev.relat.eval;

import static java.nio.charset.StandardCharsets.UTF_8;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A benchmark in JSON lines: one object per line with a question field and an answer field.
 * Malformed lines (not UTF-8, not JSON, a field missing, an id used before) are reported by line
 * number and skipped, never fatal.
 */
public final class Dataset {
    /** Where the fields are and how answers compare. Options may be an object {"A": ...} or an array. */
    public record Format(String questionField, String answerField, String idField, String optionsField,
            AnswerKind kind) {
        /**
         * Presets: gsm8k (answer after "####"), aime, math, mc (GPQA, MedQA: question + options, letter),
         * humaneval and mbpp (code run against the tests, {@link CodeTasks}).
         */
        public static Format preset(String name) {
            return switch (name.toLowerCase(Locale.ROOT)) {
                case "gsm8k" -> new Format("question", "answer", "id", null, AnswerKind.NUMBER);
                case "aime", "math" -> new Format("problem", "answer", "id", null, AnswerKind.NUMBER);
                case "mc", "gpqa", "medqa" -> new Format("question", "answer", "id", "options", AnswerKind.LETTER);
                case "humaneval", "mbpp" -> new Format("prompt", "test", "task_id", null, AnswerKind.CODE);
                default -> throw new IllegalArgumentException("unknown dataset preset '" + name
                        + "' (known: gsm8k, aime, math, mc, gpqa, medqa, humaneval, mbpp)");
            };
        }

        public Format withFields(String question, String answer) {
            return new Format(question != null ? question : questionField, answer != null ? answer : answerField,
                    idField, optionsField, kind);
        }
    }

    /** A line that could not be used, with the reason. */
    public record Problem(int line, String message) {
        @Override
        public String toString() {
            return "line " + line + ": " + message;
        }
    }

    private final List<Question> questions;
    private final List<Problem> problems;

    private Dataset(List<Question> questions, List<Problem> problems) {
        this.questions = List.copyOf(questions);
        this.problems = List.copyOf(problems);
    }

    public List<Question> questions() {
        return questions;
    }

    public List<Problem> problems() {
        return problems;
    }

    /** The same file's problems with only these questions (a shard of it). */
    public Dataset withQuestions(List<Question> chosen) {
        return new Dataset(chosen, problems);
    }

    public static Dataset read(Path file, Format format) throws IOException {
        return parse(Files.readAllBytes(file), format);
    }

    /** The questions of a JSON-lines text; never throws for bad content (see {@link #problems}). */
    public static Dataset parse(byte[] bytes, Format format) {
        List<Question> questions = new ArrayList<>();
        List<Problem> problems = new ArrayList<>();
        Map<String, Integer> firstLineOfId = new HashMap<>();
        int line = 0;
        for (int start = 0; start < bytes.length; ) {
            int end = start;
            while (end < bytes.length && bytes[end] != '\n') end++;
            line++;
            int length = end - start;
            if (length > 0 && bytes[end - 1] == '\r') length--;
            String text;
            try {
                text = UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(bytes, start, length)).toString();
            } catch (CharacterCodingException e) {
                text = null;
                problems.add(new Problem(line, "not valid UTF-8"));
            }
            start = end + 1;
            if (text == null || text.isBlank()) continue;
            try {
                Question q = parse(text, format, line);
                Integer first = firstLineOfId.putIfAbsent(q.id(), line);
                if (first != null) {
                    problems.add(new Problem(line, "id '" + q.id() + "' is already the id of line " + first));
                } else {
                    questions.add(q);
                }
            } catch (RuntimeException e) {
                problems.add(new Problem(line, e.getMessage()));
            }
        }
        return new Dataset(questions, problems);
    }

    private static Question parse(String text, Format format, int line) {
        JsonElement element;
        try {
            element = JsonParser.parseString(text);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("not valid JSON (" + firstLine(e.getMessage()) + ")");
        }
        if (!element.isJsonObject()) throw new IllegalArgumentException("not a JSON object");
        JsonObject o = element.getAsJsonObject();
        if (format.kind() == AnswerKind.CODE) return CodeTasks.question(o, format, line, id(o, format, line));
        String question = field(o, format.questionField(), "question");
        String answer = field(o, format.answerField(), "answer");
        if (answer.contains("####")) {  // GSM8K: the worked solution, then "#### final answer"
            answer = answer.substring(answer.lastIndexOf("####") + 4).strip();
        }
        if (format.optionsField() != null && o.has(format.optionsField())) {
            question = question + "\n" + options(o.get(format.optionsField()));
        }
        return new Question(id(o, format, line), question, answer, format.kind(), line);
    }

    private static String id(JsonObject o, Format format, int line) {
        return o.has(format.idField()) && !o.get(format.idField()).isJsonNull()
                ? o.get(format.idField()).getAsString() : "line-" + line;
    }

    private static String field(JsonObject o, String name, String role) {
        JsonElement e = o.get(name);
        if (e == null || e.isJsonNull()) {
            throw new IllegalArgumentException("missing " + role + " field '" + name + "'");
        }
        if (!e.isJsonPrimitive()) throw new IllegalArgumentException(role + " field '" + name + "' is not a string or number");
        String s = e.getAsString();
        if (s.isBlank()) throw new IllegalArgumentException(role + " field '" + name + "' is empty");
        return s;
    }

    private static String options(JsonElement options) {
        StringBuilder sb = new StringBuilder();
        if (options.isJsonObject()) {
            for (Map.Entry<String, JsonElement> e : options.getAsJsonObject().entrySet()) {
                sb.append(e.getKey()).append(". ").append(e.getValue().getAsString()).append('\n');
            }
        } else if (options.isJsonArray()) {
            char letter = 'A';
            for (JsonElement e : options.getAsJsonArray()) sb.append(letter++).append(". ").append(e.getAsString()).append('\n');
        } else {
            throw new IllegalArgumentException("options field is neither an object nor an array");
        }
        return sb.toString().stripTrailing();
    }

    private static String firstLine(String s) {
        if (s == null) return "parse error";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
