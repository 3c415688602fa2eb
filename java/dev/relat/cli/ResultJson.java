package dev.relat.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.relat.engine.Agents;
import dev.relat.engine.Options;
import dev.relat.engine.Phase;
import dev.relat.engine.Result;
import dev.relat.eval.Json;
import java.util.Locale;

/**
 * JSON forms of the engine's records, for {@code solve --json} and the eval results file. Always
 * valid JSON: a non-finite loss is null and {@code status} says {@value Json#NON_FINITE}.
 */
public final class ResultJson {
    private ResultJson() {}

    /** Phase name in JSON: the enum name in lower case ("latent_chain"). */
    public static String key(Phase phase) {
        return phase.name().toLowerCase(Locale.ROOT);
    }

    /**
     * Every field of a Result, phase times in nanoseconds (every phase present, 0 when it did not
     * run); "agents" only for a multi-agent method.
     */
    public static JsonObject of(Result r) {
        JsonObject o = new JsonObject();
        o.addProperty("method", r.method().cliName());
        o.addProperty("answer", r.answer());
        o.addProperty("promptTokens", r.promptTokens());
        o.addProperty("latentTokens", r.latentTokens());
        o.addProperty("answerTokens", r.answerTokens());
        o.addProperty("status", Json.status(r.losses()));
        o.add("losses", Json.numbers(r.losses()));
        JsonObject phases = new JsonObject();
        for (Phase p : Phase.values()) phases.addProperty(key(p), r.phaseNanos().getOrDefault(p, 0L));
        o.add("phaseNanos", phases);
        o.addProperty("peakDeviceBytes", r.peakDeviceBytes());
        if (!r.agents().isEmpty()) {
            JsonArray agents = new JsonArray();
            for (Result.AgentRun a : r.agents()) {
                JsonObject agent = new JsonObject();
                agent.addProperty("role", a.role());
                agent.addProperty("promptTokens", a.promptTokens());
                agent.addProperty("latentSteps", a.latentSteps());
                agent.addProperty("decodedTokens", a.decodedTokens());
                JsonObject nanos = new JsonObject();
                for (Phase p : Phase.values()) nanos.addProperty(key(p), a.phaseNanos().getOrDefault(p, 0L));
                agent.add("phaseNanos", nanos);
                agents.add(agent);
            }
            o.add("agents", agents);
        }
        return o;
    }

    /** Every option of a solve. */
    public static JsonObject of(Options opt) {
        JsonObject o = new JsonObject();
        o.addProperty("method", opt.method().cliName());
        o.addProperty("latentSteps", opt.latentSteps());
        o.addProperty("latentMode", opt.latentMode().name().toLowerCase(Locale.ROOT));
        o.addProperty("tau", opt.temperatureLatent());
        o.addProperty("updateSteps", opt.updateSteps());
        o.addProperty("learningRate", opt.learningRate());
        o.addProperty("loraRank", opt.loraRank());
        o.addProperty("loraAlpha", opt.loraAlpha());
        JsonArray targets = new JsonArray();
        for (Options.Target t : Options.Target.values()) {
            if (opt.loraTargets().contains(t)) targets.add(t.name().toLowerCase(Locale.ROOT));
        }
        o.add("loraTargets", targets);
        o.addProperty("adamBeta1", opt.adamBeta1());
        o.addProperty("adamBeta2", opt.adamBeta2());
        o.addProperty("adamEps", opt.adamEps());
        o.addProperty("weightDecay", opt.weightDecay());
        o.addProperty("realignLambda", opt.realignLambda());
        o.addProperty("thinking", opt.thinking());
        o.addProperty("systemPrompt", opt.systemPrompt());
        o.addProperty("instruction", opt.reconstructionInstruction());
        o.addProperty("answerContext", opt.answerContext().name().toLowerCase(Locale.ROOT));
        o.addProperty("maxNewTokens", opt.maxNewTokens());
        o.addProperty("maxContext", opt.maxContext());
        o.addProperty("temperature", opt.temperature());
        o.addProperty("topP", opt.topP());
        o.addProperty("topK", opt.topK());
        o.addProperty("seed", opt.seed());
        JsonArray agents = new JsonArray();
        for (Agents.Agent a : opt.agents().agents()) {
            JsonObject agent = new JsonObject();
            agent.addProperty("role", a.role());
            agent.addProperty("prompt", a.prompt());
            agents.add(agent);
        }
        o.add("agents", agents);
        return o;
    }
}
