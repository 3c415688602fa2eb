package dev.relat.engine;

import dev.relat.model.ChatMessage;
import dev.relat.model.QwenTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * The prompts of the multi-agent methods, rendered with the checkout's chat template: per agent a
 * system message ({@link Options#systemPrompt()}) and a user message holding the agent's prompt,
 * the question and, for text-mas, the earlier agents' texts. The question's tokens are spliced in
 * exactly as {@link Prompts} does, so every agent sees the same question tokens as the single-agent
 * methods.
 */
final class AgentPrompts {
    private AgentPrompts() {}

    /** The prompt of every agent of a latent pipeline (latent-mas, relat-mas): no earlier texts. */
    static List<long[]> latent(QwenTokenizer tokenizer, Prompts prompts, Options options) {
        List<long[]> out = new ArrayList<>();
        for (Agents.Agent agent : options.agents().agents()) {
            out.add(render(tokenizer, prompts, options, agent, List.of()));
        }
        return out;
    }

    /**
     * One agent's prompt; earlier holds the texts of the agents before it (text-mas), in order,
     * each as {role, text}.
     */
    static long[] render(QwenTokenizer tokenizer, Prompts prompts, Options options, Agents.Agent agent,
            List<String[]> earlier) {
        StringBuilder user = new StringBuilder(agent.prompt()).append("\n\nQuestion: ").append(Prompts.MARKER);
        if (!earlier.isEmpty()) {
            user.append("\n\nThe team's work so far:");
            for (String[] text : earlier) user.append("\n\n[").append(text[0]).append("]\n").append(text[1]);
        }
        List<ChatMessage> messages = new ArrayList<>();
        if (options.systemPrompt() != null) messages.add(ChatMessage.system(options.systemPrompt()));
        messages.add(ChatMessage.user(user.toString()));
        String[] around = Prompts.split(tokenizer.chatTemplate().render(messages, true, options.thinking()));
        return Prompts.concat(tokenizer.encode(around[0]), prompts.question(), tokenizer.encode(around[1]));
    }
}
