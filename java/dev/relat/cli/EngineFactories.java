package dev.relat.cli;

/** The production {@link SolveEngine.Factory}: dev.relat.engine.Engine. */
final class EngineFactories {
    private EngineFactories() {}

    static SolveEngine.Factory real() {
        return (checkout, device, dtype) -> {
            throw new UnsupportedOperationException(
                    "the ReLAT engine (dev.relat.engine.Engine) is not in this build yet");
        };
    }
}
