package dev.relat.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Runs the command line in process with captured output. */
final class CliTestSupport {
    private CliTestSupport() {}

    record Run(int exit, String out, String err) {}

    static Run run(SolveEngine.Factory engines, Path cacheRoot, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
                PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            Map<String, String> env = cacheRoot == null ? Map.of() : Map.of("RELAT_CACHE_DIR", cacheRoot.toString());
            int exit = Main.run(args, new Context(o, e, engines, env));
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }
    }

    /** A folder that passes --model's check (a config.json); the fake engine never reads it. */
    static Path fakeCheckout(Path dir) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), "{}");
        return dir;
    }
}
