package dev.relat.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One chat turn as the templates see it: role ("system", "user", "assistant", "tool"), content,
 * and optionally the assistant's reasoning (Qwen3's reasoning_content).
 */
public record ChatMessage(String role, String content, String reasoningContent) {
    public ChatMessage {
        if (role == null || content == null) throw new IllegalArgumentException("role and content must not be null");
    }

    public ChatMessage(String role, String content) {
        this(role, content, null);
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

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
