package dev.relat.eval;

/** How a dataset's answers are compared: as numbers, as choice letters, or as plain text. */
public enum AnswerKind {
    NUMBER,
    LETTER,
    TEXT
}
