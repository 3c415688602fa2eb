package dev.relat.model.template;

/** One lexer token: its kind, its text (or decoded string value) and where it starts. */
record Token(Kind kind, String text, int offset) {
    enum Kind { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INT, FLOAT, OP, EOF }

    boolean is(Kind k, String s) {
        return kind == k && text.equals(s);
    }

    boolean isOp(String s) {
        return is(Kind.OP, s);
    }

    boolean isName(String s) {
        return is(Kind.NAME, s);
    }
}
