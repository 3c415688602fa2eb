package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AnswersTest {
    @Test
    void lastBoxedWithNestedBraces() {
        assertEquals("\\frac{1}{2}", Answers.lastBoxed("first \\boxed{3}, finally \\boxed{\\frac{1}{2}}."));
        assertEquals("{a}{b}", Answers.lastBoxed("\\boxed {{a}{b}}"));
        assertEquals("7", Answers.lastBoxed("\\boxed{7} then an unclosed \\boxed{8"));
        assertNull(Answers.lastBoxed("no box here"));
        assertEquals("2", Answers.extract("\\boxed{\\text{x}=2}", AnswerKind.NUMBER));
    }

    @Test
    void lastNumberFallback() {
        assertEquals("42", Answers.extract("We get 12 apples, then 42 in total.", AnswerKind.NUMBER));
        assertEquals("-17", Answers.extract("the result is -17", AnswerKind.NUMBER));
        assertEquals("3.75", Answers.extract("x = 3.75.", AnswerKind.NUMBER));
        assertEquals("1234567", Answers.extract("total: 1,234,567 dollars", AnswerKind.NUMBER));
        assertEquals("-1234.5", Answers.extract("\\boxed{-1,234.5}", AnswerKind.NUMBER));
        assertEquals("", Answers.extract("no digits at all", AnswerKind.NUMBER));
        assertEquals("204", Answers.extract("it is 204.", AnswerKind.NUMBER), "a sentence's full stop is not a decimal");
    }

    @Test
    void numbersCompareByValue() {
        assertTrue(Answers.matches("72", "72", AnswerKind.NUMBER));
        assertTrue(Answers.matches("72.0", "72", AnswerKind.NUMBER));
        assertTrue(Answers.matches("1234", "1,234", AnswerKind.NUMBER));
        assertTrue(Answers.matches("-5", "-5", AnswerKind.NUMBER));
        assertFalse(Answers.matches("5", "-5", AnswerKind.NUMBER));
        assertFalse(Answers.matches("", "5", AnswerKind.NUMBER));
    }

    @Test
    void multipleChoiceLetters() {
        assertEquals("C", Answers.extract("Reasoning... The answer is (C).", AnswerKind.LETTER));
        assertEquals("B", Answers.extract("so \\boxed{B}", AnswerKind.LETTER));
        assertEquals("D", Answers.extract("Answer: D", AnswerKind.LETTER));
        assertEquals("A", Answers.extract("first I thought the answer is B, but the answer is A", AnswerKind.LETTER));
        assertEquals("", Answers.extract("A long sentence without a clear choice", AnswerKind.LETTER));
        assertTrue(Answers.matches("C", "C", AnswerKind.LETTER));
        assertFalse(Answers.matches("C", "D", AnswerKind.LETTER));
    }
}
