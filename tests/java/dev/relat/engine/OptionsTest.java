package dev.relat.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

class OptionsTest {
    @Test
    void defaultsFollowTheMethodDocument() {
        Options o = Options.defaults();
        assertEquals(Method.RELAT, o.method());
        assertEquals(16, o.latentSteps());
        assertEquals(LatentMode.SOFT, o.latentMode());
        assertEquals(1.0, o.temperatureLatent());
        assertEquals(5, o.updateSteps());
        assertEquals(2e-5, o.learningRate());
        assertEquals(8, o.loraRank());
        assertEquals(2.0, o.loraScale());
        assertEquals(Set.of(Options.Target.values()), o.loraTargets());
        assertEquals(0.9, o.adamBeta1());
        assertEquals(0.999, o.adamBeta2());
        assertEquals(1e-8, o.adamEps());
        assertEquals(0.0, o.weightDecay());
        assertEquals(1e-5, o.realignLambda());
        assertEquals("Restate the original question exactly.", o.reconstructionInstruction());
        assertEquals(AnswerContext.LATENTS, o.answerContext());
    }

    @Test
    void badValuesNameTheOption() {
        var e = assertThrows(IllegalArgumentException.class, () -> Options.builder().latentSteps(0).build());
        assertTrue(e.getMessage().contains("latentSteps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Options.builder().temperatureLatent(0).build());
        assertTrue(e.getMessage().contains("tau"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Options.builder().topP(1.5).build());
        assertTrue(e.getMessage().contains("topP"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Options.builder().loraTargets(Set.of()).build());
        assertTrue(e.getMessage().contains("loraTargets"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Method.parse("closed-loop"));
        assertTrue(e.getMessage().contains("closed-loop"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Options.Target.parse("lm_head"));
        assertTrue(e.getMessage().contains("lm_head"), e.getMessage());
        assertEquals(Options.Target.GATE, Options.Target.parse("gate_proj"));
        assertEquals(Method.QUERY_LM, Method.parse("query_lm"));
    }

    @Test
    void toBuilderRoundTrips() {
        Options o = Options.builder().method(Method.LATENT).latentSteps(4).seed(7).systemPrompt(null).build();
        assertEquals(o, o.toBuilder().build());
    }
}
