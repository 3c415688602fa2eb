package dev.relat.eval;

import java.math.BigDecimal;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Answer extraction: the content of the last {@code \boxed{...}}, else the last
 * number in the text; for multiple choice, the letter.
 */
public final class Answers {
    private static final Pattern NUMBER =
            Pattern.compile("(?<![\\w.])-?(?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?(?![\\w])");
    private static final Pattern LETTER_PHRASE = Pattern.compile(
            "(?i)answer\\s*(?:is|:)?\\s*[:\\s]*\\(?\\s*([A-J])\\s*\\)?(?![A-Za-z])");
    private static final Pattern LONE_LETTER = Pattern.compile("(?<![A-Za-z])\\(?([A-J])\\)?(?![A-Za-z])");

    private Answers() {}

    /** The predicted answer in the text, normalised for comparison; "" when there is none. */
    public static String extract(String text, AnswerKind kind) {
        String boxed = lastBoxed(text);
        return switch (kind) {
            case NUMBER -> {
                String n = lastNumber(boxed != null ? boxed : text);
                yield n != null ? n : boxed != null ? boxed.strip() : "";
            }
            case LETTER -> {
                String l = letter(boxed != null ? boxed : text);
                yield l != null ? l : "";
            }
            case TEXT -> boxed != null ? normaliseText(boxed) : normaliseText(lastLine(text));
            case CODE -> CodeTasks.extractCode(text);
        };
    }

    /** True when the predicted answer equals the reference answer under the kind's rules. */
    public static boolean matches(String predicted, String reference, AnswerKind kind) {
        if (predicted == null || predicted.isEmpty()) return false;
        return switch (kind) {
            case NUMBER -> {
                String ref = lastNumber(reference);
                if (ref == null) yield normaliseText(predicted).equals(normaliseText(reference));
                try {
                    yield new BigDecimal(predicted).compareTo(new BigDecimal(ref)) == 0;
                } catch (NumberFormatException e) {
                    yield false;
                }
            }
            case LETTER -> {
                String ref = letter(reference);
                yield ref != null && ref.equals(predicted);
            }
            case TEXT -> normaliseText(predicted).equals(normaliseText(reference));
            case CODE -> false;  // judged by running it (CodeJudge), not by comparison
        };
    }

    /** The content of the last \boxed{...} (nested braces allowed), or null. */
    public static String lastBoxed(String text) {
        int at = text.lastIndexOf("\\boxed");
        while (at >= 0) {
            int open = at + "\\boxed".length();
            while (open < text.length() && Character.isWhitespace(text.charAt(open))) open++;
            if (open < text.length() && text.charAt(open) == '{') {
                int depth = 0;
                for (int i = open; i < text.length(); i++) {
                    char c = text.charAt(i);
                    if (c == '{') depth++;
                    else if (c == '}' && --depth == 0) return text.substring(open + 1, i);
                }
            }
            at = text.lastIndexOf("\\boxed", at - 1);  // unclosed: fall back to an earlier one
        }
        return null;
    }

    /** The last number in the text, without thousands separators ("-1,234.50" -> "-1234.50"), or null. */
    public static String lastNumber(String text) {
        String last = null;
        Matcher m = NUMBER.matcher(text.replace("\\!", "").replace("{,}", ","));
        while (m.find()) last = m.group();
        return last == null ? null : last.replace(",", "");
    }

    /** A choice letter: "the answer is (C)" first, else a lone letter when the text is short. */
    public static String letter(String text) {
        String last = null;
        Matcher m = LETTER_PHRASE.matcher(text);
        while (m.find()) last = m.group(1).toUpperCase();
        if (last != null) return last;
        String t = text.replace("\\text", "").replaceAll("[{}$]", "").strip();
        if (t.length() <= 4) {
            Matcher lone = LONE_LETTER.matcher(t);
            if (lone.find()) return lone.group(1);
        }
        return null;
    }

    private static String lastLine(String text) {
        String t = text.strip();
        int nl = t.lastIndexOf('\n');
        return nl < 0 ? t : t.substring(nl + 1);
    }

    private static String normaliseText(String s) {
        return s.replace("\\text", "").replaceAll("[{}$]", "").replaceAll("\\s+", " ").strip().toLowerCase();
    }
}
