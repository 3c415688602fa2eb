package dev.relat.eval;

/** Accuracy of one method over a run, and its mean test-time-training loss per update step. */
public record MethodSummary(String method, int correct, int total, double[] meanLoss) {
    public double accuracy() {
        return total == 0 ? 0 : (double) correct / total;
    }
}
