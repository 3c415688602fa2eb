package dev.relat.cli;

import dev.relat.ops.Backend;
import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
            "(-rf and -rff are set by relat bench). Needs the test classes: the relat launcher builds them.",
            "-p device=cuda (or cuda:N) runs the kernel and model benchmarks on a GPU (a CUDA build, -Pcuda)."})
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

    /**
     * glibc's malloc hands the pages of a freed multi-megabyte buffer back to the system and the
     * next call faults fresh ones in, which then dominates a libtorch baseline that allocates its
     * outputs (the Qwen RMSNorm composite at [512, 4096] fp32: 6.4 ms instead of 0.65 ms from
     * Python). Raised thresholds keep freed memory for reuse, as a long-running process does, for
     * both sides alike; jmh/pytorch_baseline.py runs with the same. Values already set are kept.
     */
    static void keepFreedMemory(Map<String, String> env) {
        env.putIfAbsent("MALLOC_MMAP_THRESHOLD_", "33554432"); // 32 MiB, glibc's cap
        env.putIfAbsent("MALLOC_TRIM_THRESHOLD_", "4294967296");
    }

    @Override
    public Integer call() throws Exception {
        Context ctx = parent.context;
        for (String a : jmhArgs) {
            if (a.equals("-rf") || a.equals("-rff") || a.equals("-o")) {
                throw new UsageError("relat bench sets " + a + " itself (results go to --out)");
            }
        }
        List<String> cuda = fromJson == null ? cudaDevices(jmhArgs) : List.of();
        if (!cuda.isEmpty() && !Backend.cudaAvailable()) {
            // fail here, not in every forked benchmark's setup after minutes of JMH output
            ctx.err().println("relat bench: " + noCuda(cuda.get(0)));
            return 1;
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
            ProcessBuilder builder = new ProcessBuilder(cmd).redirectErrorStream(true);
            keepFreedMemory(builder.environment());
            Process p = builder.start();
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

    /**
     * The CUDA values of the {@code device} parameter the JMH arguments set ({@code -p device=cuda},
     * {@code -p device=cpu,cuda:1}, {@code -pdevice=cuda}).
     *
     * @param jmhArgs the arguments passed on to JMH
     * @return each value that is {@code cuda} or {@code cuda:N}, in order; empty when none is
     */
    static List<String> cudaDevices(List<String> jmhArgs) {
        List<String> found = new ArrayList<>();
        for (int i = 0; i < jmhArgs.size(); i++) {
            String a = jmhArgs.get(i);
            String param = a.equals("-p") ? (i + 1 < jmhArgs.size() ? jmhArgs.get(++i) : "")
                    : a.startsWith("-p") ? a.substring(2) : "";
            if (!param.startsWith("device=")) continue;
            for (String value : param.substring("device=".length()).split(",")) {
                String v = value.strip();
                if (v.equals("cuda") || v.startsWith("cuda:")) found.add(v);
            }
        }
        return found;
    }

    /** The line for a CUDA device asked for on a machine without one (as the benchmarks' BenchDevice says it). */
    static String noCuda(String device) {
        return "device=" + device + ": no CUDA device (libtorch sees none / librelat_cuda not built);"
                + " run on a CUDA build with -Pcuda";
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
