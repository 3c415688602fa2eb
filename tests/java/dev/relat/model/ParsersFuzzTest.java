package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertFalse;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.relat.RelatException;
import dev.relat.model.template.Template;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Fuzz targets of the checkpoint's parsers (Jazzer). Under Surefire they replay the stored corpus
 * in ParsersFuzzTestInputs/; with JAZZER_FUZZ=1 one target is fuzzed (tests/fuzz.sh). The only
 * failure allowed is the project's own exception with a message: anything else is a finding.
 */
class ParsersFuzzTest {
    private static void allowed(RelatException e) {
        assertFalse(e.getMessage() == null || e.getMessage().isBlank(), "an error without a message");
    }

    @FuzzTest(maxDuration = "10s")
    void safetensorsHeader(FuzzedDataProvider data) {
        long extraBytes = data.consumeLong(0, 1L << 40);
        String json = data.consumeRemainingAsString();
        long dataStart = 8L + json.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        try {
            SafetensorsFile.parseHeader(Path.of("fuzz.safetensors"), dataStart + extraBytes, dataStart, json);
        } catch (CheckpointException e) {
            allowed(e);
        }
    }

    @FuzzTest(maxDuration = "10s")
    void configJson(FuzzedDataProvider data) {
        try {
            QwenConfig.parse(data.consumeRemainingAsString(), "config.json");
        } catch (CheckpointException e) {
            allowed(e);
        }
    }

    @FuzzTest(maxDuration = "10s")
    void chatTemplate(FuzzedDataProvider data) {
        String question = data.consumeString(64);
        String text = data.consumeRemainingAsString();
        try {
            Template.compile(text).render(Map.of(
                    "messages", List.of(Map.of("role", "system", "content", "Be brief."),
                            Map.of("role", "user", "content", question)),
                    "add_generation_prompt", true, "enable_thinking", false, "bos_token", "<s>", "eos_token", "</s>"));
        } catch (RelatException e) {  // TemplateException
            allowed(e);
        }
    }
}
