package dev.relat.cli;

import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.bytedeco.javacpp.Loader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code relat bench}: runs the JMH suite (jmh/, compiled with the test classes) in a child JVM on
 * the test classpath, then writes the JMH results JSON and a Markdown table (relat against the
 * libtorch baselines of the same run, as ratios of medians).
 */
@Command(name = "bench", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {"Runs the JMH suite (or the benchmarks matching the regexes) in a child JVM and writes"
                + " <out>/jmh-results.json and <out>/jmh-results.md (relat against the libtorch baselines measured in"
                + " the same run, as ratios of medians).",
            "Every argument this command does not know goes to JMH unchanged, for example:",
            "  relat bench RmsNormBench -p hidden=4096 -wi 1 -i 3 --out bench-out",
            "(-rf and -rff are set by relat bench). Needs the test classes: the relat launcher builds them."})
final class BenchCommand implements Callable<Integer> {
    static final String RESULTS_JSON = "jmh-results.json";
    static final String RESULTS_MD = "jmh-results.md";

    @ParentCommand
    Main parent;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "relat-bench",
            description = "output folder (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--classpath", paramLabel = "CP",
            description = "classpath of the JMH suite (default: target/test-classes, the relat jar or classes and"
                    + " target/test-classpath.txt, found next to the running relat)")
    String classpath;

    @Option(names = "--jvm-opt", paramLabel = "OPT",
            description = "an option for the child JVM that runs JMH (repeatable), e.g. --jvm-opt=-Xmx8g")
    List<String> jvmOpts = new ArrayList<>();

    @Option(names = "--from-json", paramLabel = "FILE",
            description = "do not run JMH: write the Markdown table of an existing JMH results JSON")
    Path fromJson;

    @Parameters(paramLabel = "JMH-ARGS", arity = "0..*", description = "benchmark regexes and JMH options")
    List<String> jmhArgs = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Context ctx = parent.context;
        for (String a : jmhArgs) {
            if (a.equals("-rf") || a.equals("-rff") || a.equals("-o")) {
                throw new UsageError("relat bench sets " + a + " itself (results go to --out)");
            }
        }
        Files.createDirectories(out);
        Path json = out.resolve(RESULTS_JSON);
        String command;
        if (fromJson != null) {
            if (!Files.isRegularFile(fromJson)) throw new UsageError("--from-json " + fromJson + ": no such file");
            if (!fromJson.toAbsolutePath().normalize().equals(json.toAbsolutePath().normalize())) {
                Files.copy(fromJson, json, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            command = "relat bench (report of " + fromJson + ")";
        } else {
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.addAll(jvmOpts);
            cmd.add("-cp");
            cmd.add(classpath != null ? classpath : defaultClasspath());
            cmd.add("org.openjdk.jmh.Main");
            cmd.addAll(jmhArgs);
            cmd.add("-rf");
            cmd.add("json");
            cmd.add("-rff");
            cmd.add(json.toAbsolutePath().toString());
            command = "relat bench " + String.join(" ", jmhArgs);
            ctx.err().println("relat bench: running JMH in a child JVM: " + command);
            Files.deleteIfExists(json);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            try (var in = p.getInputStream()) {
                in.transferTo(ctx.out());
            }
            int rc = p.waitFor();
            ctx.out().flush();
            if (rc != 0) {
                ctx.err().println("relat bench: JMH exited with status " + rc);
                return 1;
            }
            if (!Files.isRegularFile(json)) {
                ctx.err().println("relat bench: JMH wrote no results (did the regex match any benchmark?)");
                return 1;
            }
        }
        List<BenchReport.Entry> entries = BenchReport.read(json);
        String md = BenchReport.markdown(entries, command);
        Path mdFile = out.resolve(RESULTS_MD);
        Files.writeString(mdFile, md, StandardCharsets.UTF_8);
        ctx.out().println();
        ctx.out().print(md);
        ctx.out().println("\nwrote " + json + " and " + mdFile
                + " (this machine may be shared and noisy: compare ratios from the same run, not absolute times)");
        return 0;
    }

    /** target/test-classes, the relat jar and its platform jar (or target/classes) and target/test-classpath.txt. */
    static String defaultClasspath() throws IOException {
        Path self;
        try {
            self = Path.of(BenchCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IOException("cannot tell where relat runs from; pass --classpath", e);
        }
        Path target = self.getParent();
        Path testClasses = target.resolve("test-classes");
        Path testClasspath = target.resolve("test-classpath.txt");
        if (!Files.isDirectory(testClasses) || !Files.isRegularFile(testClasspath)) {
            throw new UsageError("the JMH suite is not built next to " + self + " (missing " + testClasses + " or "
                    + testClasspath + "): run `mvn -DskipTests package` or use the relat launcher, or pass --classpath");
        }
        String natives = "";
        String name = self.getFileName().toString();
        if (Files.isRegularFile(self) && name.endsWith(".jar")) {
            // relat.jar has the classes; relat-<platform>.jar beside it the native libraries
            Path platformJar = target.resolve(name.replaceFirst("\\.jar$", "-" + Loader.getPlatform() + ".jar"));
            if (Files.isRegularFile(platformJar)) natives = platformJar + File.pathSeparator;
        }
        return testClasses + File.pathSeparator + self + File.pathSeparator + natives
                + Files.readString(testClasspath, StandardCharsets.UTF_8).strip();
    }
}
