package dev.relat.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.relat.IoErrors;
import dev.relat.model.template.Template;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint's own chat template (tokenizer_config.json "chat_template"), rendered the way
 * Hugging Face's apply_chat_template does: Jinja2 with trim_blocks and lstrip_blocks, variables
 * messages, tools = None, documents = None, add_generation_prompt, the special tokens
 * (eos_token, pad_token, ...) and any extra variables such as enable_thinking.
 */
public final class ChatTemplate {
    private final Template template;
    private final Map<String, Object> specialTokens;

    private ChatTemplate(Template template, Map<String, Object> specialTokens) {
        this.template = template;
        this.specialTokens = specialTokens;
    }

    /** A template from its source and the special tokens the template may reference. */
    static ChatTemplate of(String source, Map<String, ?> specialTokens) {
        return new ChatTemplate(Template.compile(source), new LinkedHashMap<>(specialTokens));
    }

    /** The template of a tokenizer_config.json file. */
    static ChatTemplate fromTokenizerConfig(Path tokenizerConfig) {
        try {
            return fromTokenizerConfigJson(Files.readString(tokenizerConfig, StandardCharsets.UTF_8),
                    tokenizerConfig.toString());
        } catch (IOException e) {
            throw new CheckpointException(tokenizerConfig + ": cannot read: " + IoErrors.reason(e), e);
        }
    }

    /**
     * The template of tokenizer_config.json text; "chat_template" may be a string or a list of
     * named templates, of which "default" is used.
     */
    static ChatTemplate fromTokenizerConfigJson(String json, String file) {
        JsonObject config;
        try {
            JsonElement e = JsonParser.parseString(json);
            if (!e.isJsonObject()) throw new CheckpointException(file + ": not a JSON object");
            config = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new CheckpointException(file + ": invalid JSON: " + e.getMessage(), e);
        }
        JsonElement t = config.get("chat_template");
        String source = null;
        if (t != null && t.isJsonPrimitive()) {
            source = t.getAsString();
        } else if (t != null && t.isJsonArray()) {
            for (JsonElement named : t.getAsJsonArray()) {
                if (named.isJsonObject() && "default".equals(string(named.getAsJsonObject().get("name")))) {
                    source = string(named.getAsJsonObject().get("template"));
                }
            }
        }
        if (source == null) throw new CheckpointException(file + ": field 'chat_template' is missing");
        Map<String, Object> special = new LinkedHashMap<>();
        for (String key : List.of("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token",
                "mask_token")) {
            String token = tokenContent(config.get(key));
            if (token != null) special.put(key, token);
        }
        JsonElement extra = config.get("additional_special_tokens");
        if (extra != null && extra.isJsonArray()) {
            List<Object> tokens = new ArrayList<>();
            for (JsonElement x : extra.getAsJsonArray()) tokens.add(tokenContent(x));
            special.put("additional_special_tokens", tokens);
        }
        try {
            return of(source, special);
        } catch (dev.relat.model.template.TemplateException e) {
            throw new CheckpointException(file + ": field 'chat_template': " + e.getMessage(), e);
        }
    }

    /** A token given as a string or as an AddedToken object {"content": ...}; null when absent. */
    static String tokenContent(JsonElement e) {
        if (e == null || e.isJsonNull()) return null;
        if (e.isJsonPrimitive()) return e.getAsString();
        if (e.isJsonObject()) return string(e.getAsJsonObject().get("content"));
        return null;
    }

    private static String string(JsonElement e) {
        return e == null || e.isJsonNull() || !e.isJsonPrimitive() ? null : e.getAsString();
    }

    /** The special tokens the template sees (eos_token, pad_token, ...). */
    Map<String, Object> specialTokens() {
        return java.util.Collections.unmodifiableMap(specialTokens);
    }

    /**
     * Renders messages as Hugging Face's apply_chat_template would.
     *
     * @param messages the conversation, in order
     * @param addGenerationPrompt ends with the assistant turn's opening, for the model to continue
     * @param enableThinking passed as enable_thinking; null leaves it undefined (the template's
     *     default: thinking on for Qwen3)
     * @return the prompt text, special tokens written out (encode it with
     *     {@link QwenTokenizer#encode})
     * @throws dev.relat.model.template.TemplateException when the template raises an error or
     *     exceeds a budget (steps, nesting, string and list sizes); the message names the line and column
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Boolean enableThinking) {
        List<Map<String, Object>> maps = new ArrayList<>();
        for (ChatMessage m : messages) maps.add(m.toMap());
        Map<String, Object> extra = new LinkedHashMap<>();
        if (enableThinking != null) extra.put("enable_thinking", enableThinking);
        return renderMaps(maps, addGenerationPrompt, extra);
    }

    /** Renders messages given as maps (role, content, tool_calls, ...) with extra template variables. */
    String renderMaps(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt,
            Map<String, ?> extra) {
        Map<String, Object> context = new LinkedHashMap<>(specialTokens);
        context.put("messages", messages);
        context.put("tools", null);
        context.put("documents", null);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.putAll(extra);
        return template.render(context);
    }
}
