package dev.relat.eval;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.Locale;

/** The result line of a code question: its code run against the tests in the sandbox. */
final class CodeJudge {
    private CodeJudge() {}

    /**
     * Like {@link Evaluator#entry} with, instead of an answer comparison, {@code exec}: the verdict
     * (pass, fail, timeout, error), its reason, the exit status, wall milliseconds and the last lines
     * of stderr; {@code correct} is true on pass. {@code reference} is the problem (prompt, entry
     * point, tests) as a JSON object.
     */
    static JsonObject entry(CodeSandbox sandbox, Question q, String method, Solver.Outcome outcome,
            String settingsHash) {
        CodeTasks.Problem problem = CodeTasks.Problem.fromReference(q.reference());
        String solution = problem.solution(outcome.answerText());
        CodeSandbox.Outcome run = sandbox.run(solution, problem.tests(), problem.entryPoint());
        JsonObject o = Evaluator.line(q, method, settingsHash, Json.status(outcome.losses()));
        o.add("reference", JsonParser.parseString(q.reference()));
        o.addProperty("predicted", solution);
        o.addProperty("correct", run.verdict() == CodeSandbox.Verdict.PASS);
        JsonObject exec = new JsonObject();
        exec.addProperty("verdict", run.verdict().json());
        exec.addProperty("reason", run.reason());
        if (run.exitCode() != null) exec.addProperty("exitCode", run.exitCode());
        exec.addProperty("wallMillis", run.wallMillis());
        exec.addProperty("stderrTail", run.stderrTail());
        exec.addProperty("isolation", sandbox.isolation().name().toLowerCase(Locale.ROOT));
        o.add("exec", exec);
        o.add("losses", Json.numbers(outcome.losses()));
        o.addProperty("answer", outcome.answerText());
        if (outcome.record() != null) o.add("result", outcome.record());
        return o;
    }
}
