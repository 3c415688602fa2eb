package dev.relat.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One chat turn as the templates see it: role ("system", "user", "assistant", "tool"), content,
 * and optionally the assistant's reasoning (Qwen3's reasoning_content).
 *
 * @param role who speaks: system, user, assistant or tool (the template decides what it accepts)
 * @param content the text of the turn
 * @param reasoningContent the assistant's reasoning (Qwen3's reasoning_content); null for none
 */
public record ChatMessage(String role, String content, String reasoningContent) {
    /**
     * A turn; role and content are required.
     *
     * @param role not null
     * @param content not null
     * @param reasoningContent may be null
     * @throws IllegalArgumentException when role or content is null
     */
    public ChatMessage {
        if (role == null || content == null) throw new IllegalArgumentException("role and content must not be null");
    }

    /**
     * A turn without reasoning.
     *
     * @param role not null
     * @param content not null
     */
    public ChatMessage(String role, String content) {
        this(role, content, null);
    }

    /**
     * A system turn.
     *
     * @param content the system message
     * @return the turn
     */
    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    /**
     * A user turn.
     *
     * @param content what the user says
     * @return the turn
     */
    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    /**
     * An assistant turn without reasoning.
     *
     * @param content what the assistant said
     * @return the turn
     */
    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    /** The message as a template value: role and content, reasoning_content only when set. */
    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        if (reasoningContent != null) m.put("reasoning_content", reasoningContent);
        return m;
    }
}
