package dev.relat.model.template;

import dev.relat.model.template.Token.Kind;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Splits a template into text and tag tokens with Jinja2's whitespace rules as Hugging Face
 * configures them (trim_blocks=True, lstrip_blocks=True): "{%-" / "-%}" strip all whitespace
 * before / after a tag, "{%+" / "+%}" keep it, a block or comment tag's first newline after it is
 * dropped, and spaces before a block or comment tag that starts a line are dropped.
 */
final class Lexer {
    private static final String[] OPERATORS = {
        "//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "<", ">", "=", ".", ":", "|",
        ",", ";", "(", ")", "[", "]", "{", "}"
    };

    private final Source source;
    private final String input;
    private final boolean trimBlocks;
    private final boolean lstripBlocks;
    private final List<Token> tokens = new ArrayList<>();

    Lexer(Source source, boolean trimBlocks, boolean lstripBlocks) {
        this.source = source;
        this.input = source.text;
        this.trimBlocks = trimBlocks;
        this.lstripBlocks = lstripBlocks;
    }

    List<Token> tokenize() {
        int pos = 0;
        int n = input.length();
        boolean lineStarting = true;
        while (pos < n) {
            int tag = nextTag(pos);
            if (tag < 0) {
                tokens.add(new Token(Kind.TEXT, input.substring(pos), pos));
                break;
            }
            String text = input.substring(pos, tag);
            char kind = input.charAt(tag + 1);
            int inner = tag + 2;
            char sign = inner < n ? input.charAt(inner) : 0;
            if (sign == '-' || sign == '+') inner++;
            if (sign == '-') {
                text = stripTrailingWhitespace(text);
            } else if (sign != '+' && lstripBlocks && kind != '{') {
                int lineStart = text.lastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.length()
                        && isWhitespace(text, lineStart)) {
                    text = text.substring(0, lineStart);
                }
            }
            if (!text.isEmpty()) tokens.add(new Token(Kind.TEXT, text, pos));
            int end = switch (kind) {
                case '#' -> comment(tag, inner);
                case '%' -> tag(tag, inner, true);
                default -> tag(tag, inner, false);
            };
            lineStarting = end > 0 && input.charAt(end - 1) == '\n';
            pos = end;
        }
        tokens.add(new Token(Kind.EOF, "", n));
        return tokens;
    }

    private int nextTag(int from) {
        int i = from;
        while (true) {
            i = input.indexOf('{', i);
            if (i < 0 || i + 1 >= input.length()) return -1;
            char c = input.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
            i++;
        }
    }

    /** Skips a comment; returns the offset after it (and after any whitespace its end strips). */
    private int comment(int start, int from) {
        int end = input.indexOf("#}", from);
        if (end < 0) throw source.error(start, "missing end of comment tag");
        char before = end > from ? input.charAt(end - 1) : 0;
        return after(end + 2, before, true);
    }

    /** Lexes the inside of a {{ }} or {% %} tag; returns the offset after its end. */
    private int tag(int start, int from, boolean block) {
        tokens.add(new Token(block ? Kind.BLOCK_BEGIN : Kind.VAR_BEGIN, block ? "{%" : "{{", start));
        String close = block ? "%}" : "}}";
        Deque<Character> brackets = new ArrayDeque<>();
        int i = from;
        int n = input.length();
        while (true) {
            while (i < n && Character.isWhitespace(input.charAt(i))) i++;
            if (i >= n) throw source.error(start, "missing end of tag '" + close + "'");
            if (brackets.isEmpty()) {
                if (input.startsWith("-" + close, i)) {
                    tokens.add(new Token(block ? Kind.BLOCK_END : Kind.VAR_END, close, i));
                    return after(i + 3, '-', block);
                }
                if (block && input.startsWith("+" + close, i)) {
                    tokens.add(new Token(Kind.BLOCK_END, close, i));
                    return i + 3;
                }
                if (input.startsWith(close, i)) {
                    tokens.add(new Token(block ? Kind.BLOCK_END : Kind.VAR_END, close, i));
                    return after(i + 2, (char) 0, block);
                }
            }
            char c = input.charAt(i);
            if (c == '\'' || c == '"') {
                i = string(i);
            } else if (digit(c)) {
                i = number(i);
            } else if (Character.isLetter(c) || c == '_') {
                int j = i + 1;
                while (j < n && (Character.isLetterOrDigit(input.charAt(j)) || input.charAt(j) == '_')) j++;
                tokens.add(new Token(Kind.NAME, input.substring(i, j), i));
                i = j;
            } else {
                String op = null;
                for (String candidate : OPERATORS) {
                    if (input.startsWith(candidate, i)) {
                        op = candidate;
                        break;
                    }
                }
                if (op == null) throw source.error(i, "unexpected character '" + c + "'");
                switch (op) {
                    case "(" -> brackets.push(')');
                    case "[" -> brackets.push(']');
                    case "{" -> brackets.push('}');
                    case ")", "]", "}" -> {
                        if (brackets.isEmpty()) throw source.error(i, "unexpected '" + op + "'");
                        char expected = brackets.pop();
                        if (expected != op.charAt(0)) {
                            throw source.error(i, "unexpected '" + op + "', expected '" + expected + "'");
                        }
                    }
                    default -> { }
                }
                tokens.add(new Token(Kind.OP, op, i));
                i += op.length();
            }
        }
    }

    /** Whitespace control after a tag end at offset end: '-' strips all, else trim_blocks drops one newline. */
    private int after(int end, char sign, boolean block) {
        if (sign == '-') {
            while (end < input.length() && Character.isWhitespace(input.charAt(end))) end++;
            return end;
        }
        if (sign == '+') return end;
        if (block && trimBlocks && end < input.length() && input.charAt(end) == '\n') return end + 1;
        return end;
    }

    private int string(int start) {
        char quote = input.charAt(start);
        StringBuilder b = new StringBuilder();
        int i = start + 1;
        int n = input.length();
        while (true) {
            if (i >= n) throw source.error(start, "unterminated string");
            char c = input.charAt(i);
            if (c == quote) break;
            if (c == '\\' && i + 1 < n) {
                char e = input.charAt(i + 1);
                i += 2;
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case '0' -> b.append('\0');
                    case 'a' -> b.append('\u0007');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'v' -> b.append('\u000b');
                    case '\\', '\'', '"' -> b.append(e);
                    case '\n' -> { }
                    case 'x', 'u', 'U' -> {
                        int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                        if (i + len > n) throw source.error(i - 2, "truncated \\" + e + " escape");
                        try {
                            b.appendCodePoint(Integer.parseInt(input.substring(i, i + len), 16));
                        } catch (IllegalArgumentException ex) {
                            throw source.error(i - 2, "bad \\" + e + " escape");
                        }
                        i += len;
                    }
                    default -> b.append('\\').append(e);
                }
                continue;
            }
            b.append(c);
            i++;
        }
        tokens.add(new Token(Kind.STRING, b.toString(), start));
        return i + 1;
    }

    /** Number literals are ASCII, as in Python: a Unicode digit (e.g. U+06F3) is not one. */
    private static boolean digit(char c) {
        return c >= '0' && c <= '9';
    }

    private int number(int start) {
        int n = input.length();
        int i = start;
        while (i < n && (digit(input.charAt(i)) || input.charAt(i) == '_')) i++;
        boolean isFloat = false;
        if (i + 1 < n && input.charAt(i) == '.' && digit(input.charAt(i + 1))) {
            isFloat = true;
            i++;
            while (i < n && (digit(input.charAt(i)) || input.charAt(i) == '_')) i++;
        }
        if (i < n && (input.charAt(i) == 'e' || input.charAt(i) == 'E')) {
            int j = i + 1;
            if (j < n && (input.charAt(j) == '+' || input.charAt(j) == '-')) j++;
            if (j < n && digit(input.charAt(j))) {
                isFloat = true;
                i = j;
                while (i < n && digit(input.charAt(i))) i++;
            }
        }
        tokens.add(new Token(isFloat ? Kind.FLOAT : Kind.INT, input.substring(start, i).replace("_", ""), start));
        return i;
    }

    private static String stripTrailingWhitespace(String text) {
        int j = text.length();
        while (j > 0 && Character.isWhitespace(text.charAt(j - 1))) j--;
        return text.substring(0, j);
    }

    private static boolean isWhitespace(String text, int from) {
        for (int i = from; i < text.length(); i++) if (!Character.isWhitespace(text.charAt(i))) return false;
        return true;
    }
}
