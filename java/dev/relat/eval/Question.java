package dev.relat.eval;

/**
 * One benchmark item: a stable id (for resuming), the prompt text (choices included for multiple
 * choice), the reference answer and how answers are compared. {@code line} is its line in the file.
 */
public record Question(String id, String text, String reference, AnswerKind kind, int line) {}
