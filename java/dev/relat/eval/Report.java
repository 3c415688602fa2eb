package dev.relat.eval;

import com.google.gson.JsonObject;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;

/** The summary of a results file: accuracy per method (Markdown) and two PNG plots. */
final class Report {
    private static final Color[] PALETTE = {
        new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e), new Color(0x9467bd)
    };

    private Report() {}

    static List<MethodSummary> summarise(List<JsonObject> entries, List<String> methods) {
        List<MethodSummary> out = new ArrayList<>();
        for (String method : methods) {
            int correct = 0, total = 0, errors = 0;
            List<double[]> losses = new ArrayList<>();
            for (JsonObject e : entries) {
                if (!e.get("method").getAsString().equals(method)) continue;
                total++;
                if (e.get("correct").getAsBoolean()) correct++;
                if (e.has("status") && e.get("status").getAsString().equals(Json.ERROR)) errors++;
                if (e.has("losses")) {
                    // A non-finite loss is stored as null: NaN here, and left out of the step's mean.
                    double[] l = e.getAsJsonArray("losses").asList().stream()
                            .mapToDouble(x -> x.isJsonNull() ? Double.NaN : x.getAsDouble()).toArray();
                    if (l.length > 0) losses.add(l);
                }
            }
            out.add(new MethodSummary(method, correct, total, errors, meanPerStep(losses)));
        }
        return out;
    }

    private static double[] meanPerStep(List<double[]> runs) {
        int steps = runs.stream().mapToInt(r -> r.length).max().orElse(0);
        double[] mean = new double[steps];
        for (int s = 0; s < steps; s++) {
            double sum = 0;
            int n = 0;
            for (double[] r : runs) {
                if (s < r.length && Double.isFinite(r[s])) {
                    sum += r[s];
                    n++;
                }
            }
            mean[s] = sum / n;
        }
        return mean;
    }

    static String markdown(List<MethodSummary> summaries, String dataset, List<Dataset.Problem> problems) {
        return markdown(summaries, List.of(), dataset, problems);
    }

    static String markdown(List<MethodSummary> summaries, List<PairedComparison> pairs, String dataset,
            List<Dataset.Problem> problems) {
        StringBuilder sb = new StringBuilder();
        sb.append("# relat eval: ").append(dataset).append("\n\n");
        sb.append("| method | correct | total | accuracy | 95% Wilson interval |\n|---|---:|---:|---:|---:|\n");
        for (MethodSummary s : summaries) {
            Stats.Interval ci = Stats.wilson(s.correct(), s.total());
            sb.append(String.format(Locale.ROOT, "| %s | %d | %d | %.1f%% | %.1f%% to %.1f%% |%n", s.method(),
                    s.correct(), s.total(), 100 * s.accuracy(), 100 * ci.low(), 100 * ci.high()));
        }
        if (!pairs.isEmpty()) {
            sb.append("\nPaired comparison on the questions both methods answered (wins: only the first right;"
                    + " losses: only the second; exact two-sided McNemar p-value of wins against losses):\n\n");
            sb.append("| first | second | questions | wins | losses | ties | McNemar p |\n"
                    + "|---|---|---:|---:|---:|---:|---:|\n");
            for (PairedComparison p : pairs) {
                sb.append(String.format(Locale.ROOT, "| %s | %s | %d | %d | %d | %d | %s |%n", p.first(), p.second(),
                        p.questions(), p.wins(), p.losses(), p.ties(), pValue(p.pValue())));
            }
        }
        if (summaries.stream().anyMatch(s -> s.errors() > 0)) {
            sb.append("\nErrors, counted as wrong (the status and error fields of results.jsonl say why):");
            for (MethodSummary s : summaries) if (s.errors() > 0) sb.append(' ').append(s.method()).append(' ').append(s.errors());
            sb.append('\n');
        }
        boolean anyLoss = summaries.stream().anyMatch(s -> s.meanLoss().length > 0);
        if (anyLoss) {
            sb.append("\nMean test-time-training loss per update step (step 0 = before the first update):\n\n");
            for (MethodSummary s : summaries) {
                if (s.meanLoss().length == 0) continue;
                sb.append("- ").append(s.method()).append(':');
                for (double l : s.meanLoss()) sb.append(String.format(" %.4f", l));
                sb.append('\n');
            }
        }
        if (!problems.isEmpty()) {
            sb.append("\nSkipped input lines:\n\n");
            for (Dataset.Problem p : problems) sb.append("- ").append(p).append('\n');
        }
        return sb.toString();
    }

    /** A p-value to three significant digits; below 0.001 in scientific notation. */
    static String pValue(double p) {
        return p >= 0.001 ? String.format(Locale.ROOT, "%.3g", p) : String.format(Locale.ROOT, "%.2e", p);
    }

    static void write(Path dir, List<MethodSummary> summaries, String dataset, List<Dataset.Problem> problems)
            throws IOException {
        write(dir, summaries, List.of(), dataset, problems);
    }

    /** summary.md (accuracy with intervals, paired comparisons), accuracy.png and loss.png. */
    static void write(Path dir, List<MethodSummary> summaries, List<PairedComparison> pairs, String dataset,
            List<Dataset.Problem> problems) throws IOException {
        Files.writeString(dir.resolve("summary.md"), markdown(summaries, pairs, dataset, problems));
        ImageIO.write(accuracyPlot(summaries), "png", dir.resolve("accuracy.png").toFile());
        ImageIO.write(lossPlot(summaries), "png", dir.resolve("loss.png").toFile());
    }

    private static final int W = 720, H = 440, LEFT = 70, RIGHT = 30, TOP = 50, BOTTOM = 60;

    private static Graphics2D canvas(BufferedImage image, String title) {
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, LEFT, 30);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.drawLine(LEFT, H - BOTTOM, W - RIGHT, H - BOTTOM);
        g.drawLine(LEFT, TOP, LEFT, H - BOTTOM);
        return g;
    }

    static BufferedImage accuracyPlot(List<MethodSummary> summaries) {
        BufferedImage image = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = canvas(image, "Accuracy per method (whiskers: 95% Wilson interval)");
        int plotH = H - TOP - BOTTOM, plotW = W - LEFT - RIGHT;
        for (int pct = 0; pct <= 100; pct += 25) {
            int y = H - BOTTOM - plotH * pct / 100;
            g.setColor(Color.LIGHT_GRAY);
            g.drawLine(LEFT + 1, y, W - RIGHT, y);
            g.setColor(Color.BLACK);
            g.drawString(pct + "%", LEFT - 40, y + 4);
        }
        int n = Math.max(1, summaries.size());
        int slot = plotW / n, bar = Math.min(90, slot * 2 / 3);
        for (int i = 0; i < summaries.size(); i++) {
            MethodSummary s = summaries.get(i);
            int h = (int) Math.round(plotH * s.accuracy());
            int x = LEFT + i * slot + (slot - bar) / 2;
            g.setColor(PALETTE[i % PALETTE.length]);
            g.fillRect(x, H - BOTTOM - h, bar, h);
            g.setColor(Color.BLACK);
            Stats.Interval ci = Stats.wilson(s.correct(), s.total());
            int yLow = H - BOTTOM - (int) Math.round(plotH * ci.low());
            int yHigh = H - BOTTOM - (int) Math.round(plotH * ci.high());
            int mid = x + bar / 2, cap = Math.max(3, bar / 6);
            g.setStroke(new BasicStroke(1.5f));
            g.drawLine(mid, yLow, mid, yHigh);
            g.drawLine(mid - cap, yLow, mid + cap, yLow);
            g.drawLine(mid - cap, yHigh, mid + cap, yHigh);
            g.setStroke(new BasicStroke(1f));
            // the label sits above the bar and its whisker, inside the canvas
            int labelY = Math.max(TOP - 4, Math.min(H - BOTTOM - h, yHigh) - 6);
            g.drawString(String.format(Locale.ROOT, "%.1f%% (%d/%d)", 100 * s.accuracy(), s.correct(), s.total()),
                    x, labelY);
            g.drawString(s.method(), x, H - BOTTOM + 18);
        }
        g.dispose();
        return image;
    }

    static BufferedImage lossPlot(List<MethodSummary> summaries) {
        BufferedImage image = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = canvas(image, "Mean test-time-training loss per update step");
        Map<String, double[]> series = new LinkedHashMap<>();
        for (MethodSummary s : summaries) if (s.meanLoss().length > 0) series.put(s.method(), s.meanLoss());
        if (series.isEmpty()) {
            g.drawString("no method in this run trains at test time", LEFT + 20, TOP + 40);
            g.dispose();
            return image;
        }
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
        int steps = 0;
        for (double[] l : series.values()) {
            for (double v : l) {
                if (!Double.isFinite(v)) continue;  // a step with no finite loss is left out
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
            steps = Math.max(steps, l.length);
        }
        if (lo > hi) {
            lo = 0;
            hi = 1;
        }
        if (hi - lo < 1e-9) {
            hi += 0.5;
            lo -= 0.5;
        }
        double pad = 0.05 * (hi - lo);
        lo -= pad;
        hi += pad;
        int plotH = H - TOP - BOTTOM, plotW = W - LEFT - RIGHT;
        for (int t = 0; t <= 4; t++) {
            double v = lo + (hi - lo) * t / 4;
            int y = H - BOTTOM - (int) (plotH * (v - lo) / (hi - lo));
            g.setColor(Color.LIGHT_GRAY);
            g.drawLine(LEFT + 1, y, W - RIGHT, y);
            g.setColor(Color.BLACK);
            g.drawString(String.format("%.3f", v), 8, y + 4);
        }
        int span = Math.max(1, steps - 1);
        for (int s = 0; s < steps; s++) g.drawString(Integer.toString(s), LEFT + plotW * s / span - 3, H - BOTTOM + 18);
        g.drawString("update step", LEFT + plotW / 2 - 30, H - 15);
        int i = 0, legendY = TOP + 10;
        for (Map.Entry<String, double[]> e : series.entrySet()) {
            g.setColor(PALETTE[i++ % PALETTE.length]);
            g.setStroke(new BasicStroke(2f));
            double[] l = e.getValue();
            int px = -1, py = -1;
            for (int s = 0; s < l.length; s++) {
                if (!Double.isFinite(l[s])) {
                    px = -1;
                    continue;
                }
                int x = LEFT + plotW * s / span, y = H - BOTTOM - (int) (plotH * (l[s] - lo) / (hi - lo));
                g.fillOval(x - 3, y - 3, 6, 6);
                if (px >= 0) g.drawLine(px, py, x, y);
                px = x;
                py = y;
            }
            g.drawLine(W - RIGHT - 135, legendY - 4, W - RIGHT - 115, legendY - 4);
            g.drawString(e.getKey(), W - RIGHT - 110, legendY);
            legendY += 16;
        }
        g.dispose();
        return image;
    }
}
