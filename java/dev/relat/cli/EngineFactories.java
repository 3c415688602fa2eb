package dev.relat.cli;

import dev.relat.engine.Engine;
import dev.relat.engine.Options;
import dev.relat.engine.PhaseListener;
import dev.relat.engine.Result;
import dev.relat.model.QwenConfig;
import java.util.List;

/** The production {@link SolveEngine.Factory}: dev.relat.engine.Engine. */
final class EngineFactories {
    private EngineFactories() {}

    static SolveEngine.Factory real() {
        return (checkout, device, dtype) -> {
            Engine engine = Engine.open(checkout, device, dtype);
            return new SolveEngine() {
                @Override
                public Result solve(String question, Options options, PhaseListener listener) {
                    return engine.solve(question, options, listener);
                }

                @Override
                public List<Result> solveAll(List<String> questions, Options options, PhaseListener listener) {
                    return engine.solveAll(questions, options, listener);
                }

                @Override
                public QwenConfig config() {
                    return engine.model().config();
                }

                @Override
                public void close() {
                    engine.close();
                }
            };
        };
    }
}
