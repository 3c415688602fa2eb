package dev.relat.eval;

import com.google.gson.JsonObject;
import java.util.ArrayList;
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

    /**
     * Several questions with one method, one outcome each, in order (a batched engine solves them
     * together); by default one after another. A {@link dev.relat.RelatException} fails the whole
     * call: the harness then solves those questions one by one, so each gets its own outcome or error.
     */
    default List<Outcome> solveAll(List<Question> questions, String method) throws Exception {
        List<Outcome> outcomes = new ArrayList<>();
        for (Question q : questions) outcomes.add(solve(q, method));
        return outcomes;
    }
}
