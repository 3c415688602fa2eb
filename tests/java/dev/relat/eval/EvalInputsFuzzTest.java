package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz targets of what an evaluation reads: the JSON-lines dataset and the model's answer text
 * (Jazzer; corpus in EvalInputsFuzzTestInputs/, fuzzing with tests/fuzz.sh). Neither may throw:
 * bad lines become problems, unreadable answers extract to nothing.
 */
class EvalInputsFuzzTest {
    private static final String[] PRESETS = {"gsm8k", "aime", "mc", "humaneval", "mbpp"};

    @FuzzTest(maxDuration = "10s")
    void datasetLines(FuzzedDataProvider data) {
        Dataset.Format format = Dataset.Format.preset(PRESETS[data.consumeInt(0, PRESETS.length - 1)]);
        byte[] bytes = data.consumeRemainingAsBytes();
        Dataset d = Dataset.parse(bytes, format);
        for (Dataset.Problem p : d.problems()) assertTrue(p.line() >= 1 && p.message() != null, p.toString());
        long lines = 1;
        for (byte b : bytes) if (b == '\n') lines++;
        for (Question q : d.questions()) assertTrue(q.line() >= 1 && q.line() <= lines, "line " + q.line());
        assertEquals(d.questions().stream().map(Question::id).distinct().count(), d.questions().size(), "unique ids");
    }

    @FuzzTest(maxDuration = "10s")
    void answerText(FuzzedDataProvider data) {
        AnswerKind kind = data.pickValue(AnswerKind.values());
        String reference = data.consumeString(16);
        String text = data.consumeRemainingAsString();
        String predicted = Answers.extract(text, kind);
        Answers.matches(predicted, reference, kind);
    }
}
