package dev.relat.cli;

import picocli.CommandLine.Command;

/** {@code relat profile}: {@code relat solve --profile}. */
@Command(name = "profile", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        defaultValueProvider = EngineOptions.Defaults.class,
        description = {"relat solve with --profile: NVTX ranges around every phase inside a 'relat question' range, and"
                + " cudaProfilerStart/Stop around the question, so that",
            "  nsys profile --capture-range=cudaProfilerApi --capture-range-end=stop -o relat ./relat profile ...",
            "captures exactly one question. Prints the phase breakdown table (on the CPU the NVTX calls are no-ops)."})
final class ProfileCommand extends SolveCommand {
    @Override
    boolean profiling() {
        return true;
    }
}
