package dev.relat.cli;

import dev.relat.engine.Options;

/** Helpers the commands share: option values that fail become {@link UsageError}s. */
final class Commands {
    private Commands() {}

    static Options options(EngineOptions engine) {
        try {
            return engine.toOptions();
        } catch (IllegalArgumentException e) {
            throw new UsageError(e.getMessage());
        }
    }
}
