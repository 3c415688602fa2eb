package dev.relat.engine;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The agents of the multi-agent methods ({@link Method#LATENT_MAS}, {@link Method#TEXT_MAS},
 * {@link Method#RELAT_MAS}), in order: every agent but the last writes into the working memory, the
 * last (the judger) decodes the answer. The built-in team is planner, critic, refiner, judger
 * ({@code dev/relat/engine/agents.json} in the jar); {@link #read} loads another from a file of the
 * same form:
 *
 * <pre>{@code
 * {"agents": [{"role": "planner", "prompt": "You are the planner ..."}, ..., {"role": "judger", "prompt": "..."}]}
 * }</pre>
 *
 * <p>Each agent's user message is its prompt, a blank line, "Question: " and the question (and, for
 * text-mas, the earlier agents' texts); the system message is {@link Options#systemPrompt()}.
 *
 * @param agents the team in order, at least one; the last one answers
 */
public record Agents(List<Agent> agents) {
    private static final String RESOURCE = "/dev/relat/engine/agents.json";
    private static final Agents DEFAULTS = parse(resource(), "the built-in agents (" + RESOURCE.substring(1) + ")");

    /**
     * One agent.
     *
     * @param role its name in results (planner, critic, ...), not blank
     * @param prompt what the agent is asked to do, put before the question in its user message; not blank
     */
    public record Agent(String role, String prompt) {
        /**
         * Checks both fields.
         *
         * @param role not blank
         * @param prompt not blank
         * @throws IllegalArgumentException naming the blank field
         */
        public Agent {
            if (role == null || role.isBlank()) throw new IllegalArgumentException("an agent's role must not be blank");
            if (prompt == null || prompt.isBlank()) {
                throw new IllegalArgumentException("agent '" + role + "': its prompt must not be blank");
            }
        }
    }

    /**
     * Copies agents; at least one.
     *
     * @param agents the team in order
     * @throws IllegalArgumentException when there is none
     */
    public Agents {
        if (agents == null || agents.isEmpty()) throw new IllegalArgumentException("there must be at least one agent");
        agents = List.copyOf(agents);
    }

    /**
     * The built-in team: planner, critic, refiner, judger.
     *
     * @return the agents the jar carries
     */
    public static Agents defaults() {
        return DEFAULTS;
    }

    /**
     * The agents of a JSON file of the form shown above.
     *
     * @param file the file
     * @return its agents
     * @throws IllegalArgumentException naming the file (and the entry) when it cannot be read or is
     *     not of that form
     */
    public static Agents read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException | UncheckedIOException e) {
            throw new IllegalArgumentException("agents file " + file + ": cannot read it: " + e.getMessage(), e);
        }
        return parse(text, "agents file " + file);
    }

    /** The agents of json; every message starts with source. */
    static Agents parse(String json, String source) {
        try {
            JsonElement root = JsonParser.parseString(json);
            if (!root.isJsonObject() || !root.getAsJsonObject().has("agents")
                    || !root.getAsJsonObject().get("agents").isJsonArray()) {
                throw new IllegalArgumentException("expected an object with an array \"agents\"");
            }
            JsonArray array = root.getAsJsonObject().getAsJsonArray("agents");
            if (array.isEmpty()) {
                throw new IllegalArgumentException("\"agents\" is empty: there must be at least one agent");
            }
            List<Agent> agents = new ArrayList<>();
            for (int i = 0; i < array.size(); i++) {
                try {
                    if (!array.get(i).isJsonObject()) throw new IllegalArgumentException("not an object");
                    JsonObject o = array.get(i).getAsJsonObject();
                    agents.add(new Agent(string(o, "role"), string(o, "prompt")));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("agent " + i + ": " + e.getMessage(), e);
                }
            }
            return new Agents(agents);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(source + ": not valid JSON: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private static String string(JsonObject o, String field) {
        JsonElement e = o.get(field);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException("field \"" + field + "\" must be a string");
        }
        return e.getAsString();
    }

    private static String resource() {
        try (InputStream in = Agents.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new IllegalStateException("the jar lacks " + RESOURCE.substring(1));
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The number of agents.
     *
     * @return agents().size()
     */
    public int size() {
        return agents.size();
    }
}
