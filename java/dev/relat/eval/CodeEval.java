package dev.relat.eval;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.time.Duration;
import java.util.Locale;

/** What {@code relat eval} needs for code presets: the sandbox from its flags and its settings in run.json. */
public final class CodeEval {
    private CodeEval() {}

    /** True when the dataset has code questions to execute. */
    public static boolean needsSandbox(Dataset dataset) {
        return dataset.questions().stream().anyMatch(q -> q.kind() == AnswerKind.CODE);
    }

    /**
     * The sandbox with a wall-clock limit of {@code timeoutSeconds} (CPU time the same, rounded
     * up); refuses, with the reason, where code cannot be isolated unless {@code allowUnsandboxed}.
     */
    public static CodeSandbox open(double timeoutSeconds, boolean allowUnsandboxed) throws CodeSandbox.Unavailable {
        if (!(timeoutSeconds > 0 && timeoutSeconds <= 3600)) {
            throw new IllegalArgumentException("--exec-timeout must be in (0, 3600] seconds, got " + timeoutSeconds);
        }
        return CodeSandbox.open(CodeSandbox.Limits.DEFAULT.withWallClock(
                Duration.ofMillis(Math.round(timeoutSeconds * 1000))), allowUnsandboxed);
    }

    /** run.json with the sandbox's limits and isolation added (they change verdicts); unchanged without one. */
    public static String runInfo(String runJson, CodeSandbox sandbox) {
        if (sandbox == null) return runJson;
        JsonObject info = JsonParser.parseString(runJson).getAsJsonObject();
        JsonObject exec = new JsonObject();
        CodeSandbox.Limits l = sandbox.limits();
        exec.addProperty("isolation", sandbox.isolation().name().toLowerCase(Locale.ROOT));
        exec.addProperty("wallClockSeconds", l.wallClock().toMillis() / 1000.0);
        exec.addProperty("cpuSeconds", l.cpuSeconds());
        exec.addProperty("addressSpaceBytes", l.addressSpace());
        exec.addProperty("openFiles", l.openFiles());
        exec.addProperty("processes", l.processes());
        exec.addProperty("fileSizeBytes", l.fileSize());
        info.add("exec", exec);
        return new GsonBuilder().setPrettyPrinting().create().toJson(info) + "\n";
    }
}
