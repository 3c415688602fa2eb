package dev.relat.cli;

import dev.relat.engine.Options;
import dev.relat.engine.PhaseListener;
import dev.relat.engine.Result;
import dev.relat.model.QwenConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * What the command line needs from the ReLAT engine: one question at a time. The production
 * implementation wraps {@code dev.relat.engine.Engine}; tests pass their own.
 */
public interface SolveEngine extends AutoCloseable {
    Result solve(String question, Options options, PhaseListener listener);

    /**
     * Several questions with the same options, one result each, in order: the engine's batched
     * pass ({@code Engine.solveAll}); by default one question after another.
     */
    default List<Result> solveAll(List<String> questions, Options options, PhaseListener listener) {
        List<Result> results = new ArrayList<>();
        for (String q : questions) results.add(solve(q, options, listener));
        return results;
    }

    /** The loaded model's config (for the header of solve's output). */
    QwenConfig config();

    @Override
    void close();

    /** Opens a checkout on a device in a dtype. */
    @FunctionalInterface
    interface Factory {
        SolveEngine open(Path checkout, Device device, ScalarType dtype);
    }
}
