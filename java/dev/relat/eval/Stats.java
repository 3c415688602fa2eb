package dev.relat.eval;

/**
 * The statistics of the summary: the 95% Wilson score interval of an accuracy, and the exact
 * (binomial, two-sided) McNemar test of two methods answered on the same questions.
 */
public final class Stats {
    /** The 0.975 quantile of the standard normal: a two-sided 95% interval. */
    public static final double Z95 = 1.959963984540054;

    private Stats() {}

    /** A closed interval of proportions, {@code 0 <= low <= high <= 1}. */
    public record Interval(double low, double high) {}

    /**
     * The 95% Wilson score interval of {@code correct} successes in {@code total} trials; [0, 1]
     * when there are no trials (nothing is known).
     */
    public static Interval wilson(int correct, int total) {
        if (correct < 0 || total < 0 || correct > total) {
            throw new IllegalArgumentException("need 0 <= correct <= total, got " + correct + "/" + total);
        }
        if (total == 0) return new Interval(0, 1);
        double n = total, p = correct / n, z2 = Z95 * Z95;
        double denominator = 1 + z2 / n;
        double centre = (p + z2 / (2 * n)) / denominator;
        double half = Z95 / denominator * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        double low = correct == 0 ? 0 : Math.max(0, centre - half);
        double high = correct == total ? 1 : Math.min(1, centre + half);
        return new Interval(low, high);
    }

    /**
     * The exact two-sided McNemar p-value: {@code b} questions only the first method got right,
     * {@code c} only the second; under the null hypothesis min(b, c) is Binomial(b + c, 1/2), and
     * p = min(1, 2 P(X <= min(b, c))). 1 when there is no discordant question.
     */
    public static double mcnemarExact(int b, int c) {
        if (b < 0 || c < 0) throw new IllegalArgumentException("need b, c >= 0, got " + b + ", " + c);
        int n = b + c, k = Math.min(b, c);
        if (n == 0) return 1;
        // log C(n, i) for i = 0..k; the terms grow up to i = k (k <= n / 2), so sum relative to the last.
        double[] logTerm = new double[k + 1];
        for (int i = 1; i <= k; i++) logTerm[i] = logTerm[i - 1] + Math.log(n - i + 1) - Math.log(i);
        double sum = 0;
        for (int i = 0; i <= k; i++) sum += Math.exp(logTerm[i] - logTerm[k]);
        double logTail = logTerm[k] + Math.log(sum) - n * Math.log(2);
        return Math.min(1, 2 * Math.exp(logTail));
    }
}
