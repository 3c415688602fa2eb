package dev.relat.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The one place the randomised tests take their seeds from, and where their measured errors go.
 *
 * <p>{@link #fresh()} is a new random seed at every call, unless {@code -Drelat.test.seed=N} is
 * set (Maven passes it through to the test JVM): then every call returns N. A test draws all of one
 * case's randomness from one {@code fresh()} seed and prints it in its failure message, so
 * {@code mvn -o surefire:test -Dtest='Class#method' -Drelat.test.seed=N} replays that failure.
 *
 * <p>With {@code -Drelat.test.record=FILE} every checked error is appended to FILE as one line
 * {@code test <tab> check <tab> value <tab> bound <tab> seed}; {@code tests/seed-sweep.sh} runs the
 * test classes many times that way and prints, per check, the worst value, its seed and the margin
 * to the bound. {@code -Drelat.test.repeat=R} makes the parameterised sources that honour it
 * ({@link #repeat()}) list each case R times, for sweeps inside one JVM.
 */
public final class Seeds {
    public static final String SEED = "relat.test.seed";
    public static final String RECORD = "relat.test.record";
    public static final String REPEAT = "relat.test.repeat";
    public static final String CASES = "relat.test.cases";

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final ThreadLocal<Long> CURRENT = new ThreadLocal<>();

    private Seeds() {}

    /** A fresh seed, or the replay seed when -Drelat.test.seed is set; remembered as {@link #current()}. */
    public static long fresh() {
        long seed = replaySeed().orElseGet(RANDOM::nextLong);
        CURRENT.set(seed);
        return seed;
    }

    /** The replay seed from -Drelat.test.seed, if set; a malformed value fails loudly. */
    public static Optional<Long> replaySeed() {
        String value = System.getProperty(SEED);
        if (value == null || value.isBlank()) return Optional.empty();
        String v = value.trim();
        try { // signed as the JUnit tests print them, or unsigned as the native tests do
            return Optional.of(v.startsWith("-") ? Long.parseLong(v) : Long.parseUnsignedLong(v));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + SEED + "=" + value + ": not a 64-bit integer seed", e);
        }
    }

    /** The last seed this thread drew in the running test, if any. */
    public static Optional<Long> current() {
        return Optional.ofNullable(CURRENT.get());
    }

    /** Forgets {@link #current()}; {@link SeedScope} calls it before every test. */
    public static void forget() {
        CURRENT.remove();
    }

    /** "seed N (replay: -Drelat.test.seed=N)", for failure messages. */
    public static String describe(long seed) {
        return "seed " + seed + " (replay: -D" + SEED + "=" + seed + ")";
    }

    /** How many times a repeatable parameterised source lists each case (1 unless sweeping). */
    public static int repeat() {
        int r = Integer.getInteger(REPEAT, 1);
        if (r < 1) throw new IllegalArgumentException("-D" + REPEAT + "=" + r + ": must be at least 1");
        return r;
    }

    /**
     * Whether a parameterised case named name is listed: all are, unless -Drelat.test.cases=REGEX
     * narrows a sweep to the cases whose name it finds (e.g. "TRAINED").
     */
    public static boolean selected(String name) {
        String regex = System.getProperty(CASES);
        return regex == null || regex.isBlank() || Pattern.compile(regex).matcher(name).find();
    }

    /**
     * Appends one measured error to the record file, when -Drelat.test.record is set. check names
     * what was compared (seed numbers in it are dropped, so one check keeps one name across seeds).
     */
    public static void record(String check, double value, double bound, long seed) {
        String file = System.getProperty(RECORD);
        if (file == null || file.isBlank()) return;
        String name = check.replaceAll("\\(?\\s*seed -?\\d+\\)?", "").replaceAll("[\\t\\n]", " ")
                .replaceAll("\\s+", " ").replaceAll("[ ,:;]+$", "").trim();
        String line = String.format(Locale.ROOT, "%s\t%s\t%.6e\t%.6e\t%d%n", testName(), name, value, bound, seed);
        try {
            synchronized (Seeds.class) {
                Files.writeString(Path.of(file), line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("-D" + RECORD + "=" + file + ": cannot append", e);
        }
    }

    /** Class#method of the outermost frame in a class whose name ends in Test: the test method. */
    private static String testName() {
        return StackWalker.getInstance().walk(frames -> frames
                .filter(f -> f.getClassName().endsWith("Test"))
                .reduce((first, second) -> second) // the outermost: the test method, not a helper in it
                .map(f -> f.getClassName().substring(f.getClassName().lastIndexOf('.') + 1) + "#" + f.getMethodName())
                .orElse("?"));
    }
}
