package dev.relat.cli;

import dev.relat.IoErrors;
import dev.relat.engine.AnswerContext;
import dev.relat.engine.LatentMode;
import dev.relat.engine.Method;
import dev.relat.engine.Options;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.Arrays;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/**
 * The relat command line: {@code relat solve | profile | eval | bench | selftest}. Exit codes: 0
 * success, 1 a failure while running, 2 a bad command line or option value (one line on stderr).
 */
@Command(name = "relat", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "ReLAT test-time training for Qwen models: think in latent vectors, train a throw-away LoRA"
                + " on reconstructing the question from them, then answer.",
        subcommands = {SolveCommand.class, ProfileCommand.class, EvalCommand.class, BenchCommand.class,
            SelftestCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    final Context context;

    @Spec
    CommandSpec spec;

    @Option(names = "--debug", scope = ScopeType.INHERIT,
            description = "print the stack trace of an error (also: RELAT_DEBUG=1)")
    boolean debug;

    Main(Context context) {
        this.context = context;
    }

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command (solve, profile, eval, bench or selftest)");
    }

    public static void main(String[] args) {
        System.exit(run(args, Context.system()));
    }

    /** Runs the command line against a context; returns the exit code. */
    static int run(String[] args, Context context) {
        try {
            return commandLine(context).execute(args);
        } catch (StackOverflowError | OutOfMemoryError e) {  // not Exceptions: picocli lets them through
            context.err().println("relat: error: " + (e instanceof OutOfMemoryError
                    ? "out of memory (" + e.getMessage() + "); the Java heap is set with -Xmx"
                    : "stack overflow: the input is nested too deeply"));
            if (Arrays.asList(args).contains("--debug") || context.env().containsKey("RELAT_DEBUG")) {
                e.printStackTrace(context.err());
            }
            return 1;
        }
    }

    static CommandLine commandLine(Context context) {
        CommandLine cl = new CommandLine(new Main(context));
        cl.setOut(new PrintWriter(context.out(), true));
        cl.setErr(new PrintWriter(context.err(), true));
        cl.registerConverter(Method.class, Method::parse);
        cl.registerConverter(LatentMode.class, LatentMode::parse);
        cl.registerConverter(AnswerContext.class, AnswerContext::parse);
        cl.registerConverter(Options.Target.class, Options.Target::parse);
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine c = ex.getCommandLine();
            context.err().println("relat: " + ex.getMessage());
            context.err().println("try '" + c.getCommandSpec().qualifiedName() + " --help'");
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            if (ex instanceof UsageError) {
                context.err().println("relat: " + ex.getMessage());
                return 2;
            }
            context.err().println("relat: error: " + describe(ex));
            boolean debug = ((Main) cl.getCommand()).debug || context.env().containsKey("RELAT_DEBUG");
            if (debug) ex.printStackTrace(context.err());
            else context.err().println("(--debug prints the stack trace)");
            return 1;
        });
        // bench hands everything it does not know to JMH
        cl.getSubcommands().get("bench").setUnmatchedOptionsArePositionalParams(true);
        return cl;
    }

    private static String describe(Throwable ex) {
        if (ex instanceof IOException io) return IoErrors.describe(io);
        if (ex instanceof UncheckedIOException u) return IoErrors.describe(u.getCause());
        String m = ex.getMessage();
        return m == null || m.isBlank() ? ex.toString() : m;
    }

    /** The relat version (from the jar manifest; "development" from class folders). */
    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return v != null ? v : "development";
    }

    static final class Version implements IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"relat " + version(), "Java " + System.getProperty("java.version")};
        }
    }
}
