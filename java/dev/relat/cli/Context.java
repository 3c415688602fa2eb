package dev.relat.cli;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/**
 * What the commands run against: output streams, the engine factory, the environment (for the
 * demo model's cache folder). {@link #system()} is the real one; tests build their own.
 */
record Context(PrintStream out, PrintStream err, SolveEngine.Factory engines, Map<String, String> env) {
    static Context system() {
        return new Context(System.out, System.err, EngineFactories.real(), System.getenv());
    }

    Path cacheRoot() {
        return DemoModel.cacheRoot(env);
    }
}
