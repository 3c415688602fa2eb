package dev.relat.model.template;

import dev.relat.RelatException;

/** A chat template failed to parse or to render; the message names the line and column. */
public final class TemplateException extends RelatException {
    private final int line;
    private final int column;

    TemplateException(String message, int line, int column) {
        super("chat template line " + line + ", column " + column + ": " + message);
        this.line = line;
        this.column = column;
    }

    /** 1-based line of the template position at fault. */
    public int line() {
        return line;
    }

    /** 1-based column of the template position at fault. */
    public int column() {
        return column;
    }
}
