package dev.relat.model.template;

import java.util.Arrays;

/**
 * Template text as Jinja2 sees it: line breaks normalised to "\n" and one trailing newline dropped
 * (keep_trailing_newline=False), with offset-to-line/column mapping for error messages.
 */
final class Source {
    final String text;
    private final int[] lineStarts;

    Source(String raw) {
        String s = raw.replace("\r\n", "\n").replace('\r', '\n');
        if (s.endsWith("\n")) s = s.substring(0, s.length() - 1);
        text = s;
        int count = 1;
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) == '\n') count++;
        lineStarts = new int[count];
        int line = 1;
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) == '\n') lineStarts[line++] = i + 1;
    }

    TemplateException error(int offset, String message) {
        int idx = Arrays.binarySearch(lineStarts, offset);
        int line = idx >= 0 ? idx : -idx - 2;
        return new TemplateException(message, line + 1, offset - lineStarts[line] + 1);
    }
}
