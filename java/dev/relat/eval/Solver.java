package dev.relat.eval;

import com.google.gson.JsonObject;
import java.util.List;

/** What the evaluation harness needs from an engine: one question, one method, one outcome. */
@FunctionalInterface
public interface Solver {
    /**
     * @param answerText the decoded answer
     * @param losses the test-time-training losses (before each update and after the last), may be empty
     * @param record the engine's full result record, written as is into the results file
     */
    record Outcome(String answerText, List<Double> losses, JsonObject record) {}

    Outcome solve(Question question, String method) throws Exception;
}
