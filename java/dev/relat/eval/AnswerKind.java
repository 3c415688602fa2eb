package dev.relat.eval;

/**
 * How a dataset's answers are compared: as numbers, as choice letters, or as plain text; code is
 * run against the benchmark's tests instead ({@link CodeSandbox}).
 */
public enum AnswerKind {
    NUMBER,
    LETTER,
    TEXT,
    CODE
}
