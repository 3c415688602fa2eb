package dev.relat.eval;

/**
 * Accuracy of one method over a run, and its mean test-time-training loss per update step;
 * errors are the questions the engine refused or gave up on (counted in total, as wrong).
 */
public record MethodSummary(String method, int correct, int total, int errors, double[] meanLoss) {
    public double accuracy() {
        return total == 0 ? 0 : (double) correct / total;
    }
}
