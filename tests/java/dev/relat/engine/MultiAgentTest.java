package dev.relat.engine;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.model.CheckpointWriter;
import dev.relat.model.KvCache;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.testing.Seeds;
import dev.relat.testing.TensorAssert;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The multi-agent methods (latent-mas, text-mas, relat-mas) on the random tiny checkpoints of
 * {@link EngineTest} with the real Qwen3 tokenizer: the agents, the working memory, the text
 * hand-over, and relat-mas's LoRA gradients against the fp64 libtorch-autograd reference.
 */
class MultiAgentTest {
    static final String QUESTION = EngineTest.QUESTION;

    @TempDir
    Path tmp;

    static Options.Builder small(Method method) {
        return EngineTest.small().method(method).latentSteps(2).maxNewTokens(4);
    }

    @Test
    void theBuiltInTeamIsPlannerCriticRefinerJudger() {
        List<String> roles = Agents.defaults().agents().stream().map(Agents.Agent::role).toList();
        assertEquals(List.of("planner", "critic", "refiner", "judger"), roles);
        assertEquals(Agents.defaults(), Options.defaults().agents());
        for (Method m : List.of(Method.LATENT_MAS, Method.TEXT_MAS, Method.RELAT_MAS)) {
            assertTrue(m.multiAgent(), m.toString());
            assertEquals(m, Method.parse(m.cliName()));
            assertEquals(LatentMode.REALIGN, Options.builder().method(m).build().latentMode(),
                    "LatentMAS's rule by default");
            assertEquals(LatentMode.SOFT, Options.builder().method(m).latentMode(LatentMode.SOFT).build().latentMode());
        }
        assertEquals(LatentMode.SOFT, Options.defaults().latentMode());
        var e = assertThrows(IllegalArgumentException.class, () -> Method.parse("latent-maze"));
        assertTrue(e.getMessage().contains("relat-mas"), e.getMessage());
    }

    @Test
    void aBadAgentsFileIsRefusedNamingTheFile() throws IOException {
        Path good = tmp.resolve("good.json");
        Files.writeString(good, "{\"agents\": [{\"role\": \"solver\", \"prompt\": \"Solve it.\"},"
                + " {\"role\": \"judge\", \"prompt\": \"Answer it.\"}]}");
        assertEquals(List.of(new Agents.Agent("solver", "Solve it."), new Agents.Agent("judge", "Answer it.")),
                Agents.read(good).agents());
        Map<String, String> bad = Map.of(
                "{\"agents\": [", "not valid JSON",
                "[1, 2]", "an object with an array \"agents\"",
                "{\"agents\": []}", "at least one agent",
                "{\"agents\": [{\"role\": \"a\"}]}", "agent 0: field \"prompt\" must be a string",
                "{\"agents\": [{\"role\": \"a\", \"prompt\": \"x\"}, {\"role\": \" \", \"prompt\": \"y\"}]}",
                "agent 1: an agent's role must not be blank",
                "{\"agents\": [{\"role\": \"a\", \"prompt\": \"\"}]}", "agent 'a': its prompt must not be blank");
        for (Map.Entry<String, String> c : bad.entrySet()) {
            Path f = tmp.resolve("bad.json");
            Files.writeString(f, c.getKey());
            var e = assertThrows(IllegalArgumentException.class, () -> Agents.read(f), c.getKey());
            assertTrue(e.getMessage().startsWith("agents file " + f + ": ") && e.getMessage().contains(c.getValue()),
                    e.getMessage());
        }
        var missing = assertThrows(IllegalArgumentException.class, () -> Agents.read(tmp.resolve("absent.json")));
        assertTrue(missing.getMessage().contains("absent.json"), missing.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Agents(List.of()));
        var unset = assertThrows(IllegalArgumentException.class, () -> Options.builder().agents(null).build());
        assertTrue(unset.getMessage().contains("agents must be set"), unset.getMessage());
    }

    /**
     * latent-mas: three agents write their prompts and m latent steps each into the working memory,
     * the judger prefills on top of it; with no answer tokens the cache holds exactly that.
     */
    @Test
    void latentMasFillsTheWorkingMemory() {
        Engine engine = EngineTest.engine("qwen3", TensorAssert.freshSeed());
        Options o = small(Method.LATENT_MAS).latentSteps(3).maxNewTokens(0).build();
        Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
        try (PointerScope scope = new PointerScope()) {
            Question q = engine.question(prompts, o, PhaseListener.NONE);
            List<long[]> agentPrompts = q.agentPrompts();
            assertEquals(4, agentPrompts.size());
            int memory = 0;
            for (int i = 0; i < 3; i++) memory += agentPrompts.get(i).length + 3;
            assertEquals(memory, q.memoryLength());
            try (KvCache cache = engine.model().newCache(q.capacity())) {
                Collaboration team = new Collaboration(q, engine.tokenizer());
                assertEquals(0, team.latent(cache, null).length);
                assertEquals(memory + agentPrompts.get(3).length, cache.length());
                assertEquals(List.of(3, 3, 3, 0), team.runs().stream().map(Result.AgentRun::latentSteps).toList());
            }
        }
    }

    @Test
    void latentMasReportsEveryAgentAndIsDeterministic() {
        Engine engine = EngineTest.engine("qwen2", TensorAssert.freshSeed());
        Options o = small(Method.LATENT_MAS).build();
        Result r = engine.solve(QUESTION, o);
        assertEquals(List.of("planner", "critic", "refiner", "judger"),
                r.agents().stream().map(Result.AgentRun::role).toList());
        List<long[]> prompts = AgentPrompts.latent(engine.tokenizer(), Prompts.of(engine.tokenizer(), QUESTION, o), o);
        for (int i = 0; i < 4; i++) {
            Result.AgentRun a = r.agents().get(i);
            assertEquals(prompts.get(i).length, a.promptTokens(), a.role());
            assertEquals(i < 3 ? 2 : 0, a.latentSteps(), a.role());
            assertEquals(i < 3 ? 0 : r.answerTokens(), a.decodedTokens(), a.role());
            assertTrue(a.phaseNanos().containsKey(Phase.PREFILL), a.role());
            assertEquals(i < 3, a.phaseNanos().containsKey(Phase.LATENT_CHAIN), a.role());
            assertEquals(i == 3, a.phaseNanos().containsKey(Phase.ANSWER_DECODE), a.role());
        }
        assertEquals(r.agents().stream().mapToInt(Result.AgentRun::promptTokens).sum(), r.promptTokens());
        assertEquals(6, r.latentTokens());
        assertTrue(r.answerTokens() <= 4 && r.losses().isEmpty());
        Result again = engine.solve(QUESTION, o);
        assertEquals(r.answer(), again.answer());
        assertEquals(r.agents().stream().map(Result.AgentRun::decodedTokens).toList(),
                again.agents().stream().map(Result.AgentRun::decodedTokens).toList());
    }

    /** relat-mas with no update answers with a zero adapter (B = 0): exactly latent-mas's answer. */
    @Test
    void relatMasWithoutUpdatesAnswersLikeLatentMas() {
        Engine engine = EngineTest.engine("qwen3", TensorAssert.freshSeed());
        Result open = engine.solve(QUESTION, small(Method.LATENT_MAS).maxNewTokens(6).build());
        Result trained = engine.solve(QUESTION, small(Method.RELAT_MAS).maxNewTokens(6).updateSteps(0).build());
        assertEquals(open.answer(), trained.answer());
        assertEquals(1, trained.losses().size());
        Result updated = engine.solve(QUESTION, small(Method.RELAT_MAS).learningRate(1e-2).updateSteps(2).build());
        assertEquals(3, updated.losses().size());
        assertTrue(updated.losses().get(2) < updated.losses().get(0), "loss did not fall: " + updated.losses());
        assertTrue(updated.phaseNanos().containsKey(Phase.BACKWARD) && updated.phaseNanos().containsKey(Phase.UPDATE));
        assertEquals(6, updated.latentTokens());
    }

    /**
     * A whole relat-mas question (two updates at the paper's lr, as EngineTest's whole-question
     * test, then the adapted team's greedy answer) against the libtorch-autograd reference with
     * libtorch's AdamW; and latent-mas's greedy answer against the reference pipeline.
     */
    @Test
    void wholeRelatMasAndLatentMasQuestionsMatchTheAutogradReference() {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine("qwen3", seed);
        QwenConfig config = engine.model().config();
        for (Method method : List.of(Method.RELAT_MAS, Method.LATENT_MAS)) {
            Options o = small(method).updateSteps(2).learningRate(2e-5).maxNewTokens(5).seed(seed).build();
            Result r = engine.solve(QUESTION, o);
            ReferenceRelat.Solved expected;
            try (PointerScope scope = new PointerScope();
                    Lora init = new Lora(config, EnumSet.allOf(Projection.class), o.loraRank(), o.loraAlpha(), o.seed(),
                            new Device("cpu"))) {
                Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
                expected = new ReferenceRelat(config, EngineTest.weights("qwen3", seed), init, ScalarType.Float)
                        .solve(prompts, AgentPrompts.latent(engine.tokenizer(), prompts, o), o,
                                engine.tokenizer().stopTokens(config));
            }
            assertEquals(expected.losses().size(), r.losses().size());
            if (method.trains()) {
                for (int i = 0; i < r.losses().size(); i++) {
                    double a = r.losses().get(i), b = expected.losses().get(i);
                    TensorAssert.assertWithin(Math.abs(a - b) / Math.abs(b), 1e-4, method + ": loss " + i
                            + " vs the fp32 autograd reference");
                }
            }
            assertEquals(engine.tokenizer().decode(expected.answer(), true), r.answer(), method + ": greedy answer, "
                    + Seeds.describe(seed));
            System.out.println(method + ": engine losses " + r.losses() + ", reference " + expected.losses()
                    + ", answer tokens " + r.answerTokens());
        }
    }

    /**
     * text-mas: each agent decodes and its text reaches the next agent's prompt. A team of the
     * planner alone answers with the planner's text; a team of planner and critic then gives the
     * critic a prompt holding exactly that text.
     */
    @Test
    void textMasPassesEachAgentsTextOn() {
        Engine engine = EngineTest.engine("qwen2", TensorAssert.freshSeed());
        List<Agents.Agent> team = Agents.defaults().agents();
        Options plannerOnly = small(Method.TEXT_MAS).maxNewTokens(5).agents(new Agents(team.subList(0, 1))).build();
        Result planner = engine.solve(QUESTION, plannerOnly);
        assertTrue(planner.answerTokens() > 0, "the planner decoded nothing: the test needs text to pass on");
        Options two = plannerOnly.toBuilder().agents(new Agents(team.subList(0, 2))).build();
        Result r = engine.solve(QUESTION, two);
        Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, two);
        long[] critic = AgentPrompts.render(engine.tokenizer(), prompts, two, team.get(1),
                List.<String[]>of(new String[] {"planner", planner.answer()}));
        assertEquals(planner.answerTokens(), r.agents().get(0).decodedTokens());
        assertEquals(critic.length, r.agents().get(1).promptTokens());
        assertEquals(r.answerTokens(), r.agents().get(1).decodedTokens());
        assertTrue(r.agents().get(1).promptTokens() > AgentPrompts.render(engine.tokenizer(), prompts, two, team.get(1),
                List.of()).length);

        Result all = engine.solve(QUESTION, small(Method.TEXT_MAS).build());
        assertEquals(4, all.agents().size());
        assertEquals(0, all.latentTokens());
        assertTrue(all.losses().isEmpty());
        for (Result.AgentRun a : all.agents()) {
            assertTrue(a.phaseNanos().containsKey(Phase.ANSWER_DECODE), a.role() + " decodes");
            assertEquals(0, a.latentSteps());
        }
    }

    @Test
    void aWorkingMemoryLongerThanTheContextLimitIsRefused() {
        Engine engine = EngineTest.engine("qwen3", TensorAssert.freshSeed());
        // the working memory alone is three prompts long; text-mas needs the longest agent prompt
        for (Method m : List.of(Method.LATENT_MAS, Method.RELAT_MAS, Method.TEXT_MAS)) {
            int limit = m == Method.TEXT_MAS ? 60 : 150;
            var e = assertThrows(QuestionException.class,
                    () -> engine.solve(QUESTION, small(m).maxContext(limit).build()));
            assertTrue(e.getMessage().contains("the context limit is " + limit + " (maxContext"),
                    m + ": " + e.getMessage());
        }
        assertEquals(6, engine.solve(QUESTION, small(Method.LATENT_MAS).build()).latentTokens(), "the engine goes on");
    }

    @Test
    void everyAgentPromptHoldsTheSystemMessageItsRoleAndTheQuestion() {
        Engine engine = EngineTest.engine("qwen3", TensorAssert.freshSeed());
        Options o = small(Method.LATENT_MAS).build();
        Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
        List<long[]> agentPrompts = AgentPrompts.latent(engine.tokenizer(), prompts, o);
        for (int i = 0; i < 4; i++) {
            String text = engine.tokenizer().decode(agentPrompts.get(i), false);
            Agents.Agent agent = o.agents().agents().get(i);
            assertTrue(text.contains(Options.DEFAULT_SYSTEM_PROMPT), text);
            assertTrue(text.contains(agent.prompt() + "\n\nQuestion: " + QUESTION), text);
            assertTrue(indexOf(agentPrompts.get(i), prompts.question()) >= 0,
                    "the question's own tokens, " + agent.role());
        }
    }

    private static int indexOf(long[] haystack, long[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) if (haystack[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }

    /** text-mas checks each agent's prompt once the earlier texts are in it. */
    @Test
    void aTextMasAgentWhosePromptOutgrowsTheContextIsRefused() {
        Engine engine = EngineTest.engine("qwen2", TensorAssert.freshSeed());
        Agents.Agent planner = Agents.defaults().agents().get(0);
        Agents twice = new Agents(List.of(planner, new Agents.Agent("second", planner.prompt())));
        Options o = small(Method.TEXT_MAS).maxNewTokens(5).agents(twice).build();
        int first = AgentPrompts.render(engine.tokenizer(), Prompts.of(engine.tokenizer(), QUESTION, o), o, planner,
                List.of()).length;
        var e = assertThrows(QuestionException.class,
                () -> engine.solve(QUESTION, o.toBuilder().maxContext(first + 5 + 1).build()));
        assertTrue(e.getMessage().startsWith("agent 'second' needs "), e.getMessage());
        assertTrue(e.getMessage().contains("the earlier agents' texts included"), e.getMessage());
    }

    /**
     * relat-mas on a bf16 model (LoRA fp32) against the fp64 reference on the bf16-rounded weights,
     * over all adapters at once (relative L2 error), at the single-agent bf16 bounds
     * ({@link EngineTest#BF16_GRAD_BOUND}, {@link EngineTest#BF16_LOSS_BOUND}); the textbook bf16
     * autograd reference is measured beside it. Over 6 seeds: L2 error 1.3-1.6e-2 (the bf16
     * reference 1.5-1.8e-2), loss error at most 4.6e-4.
     */
    @Test
    void relatMasBf16GradientsStayWithinTheSingleAgentBound() throws IOException {
        long seed = TensorAssert.freshSeed();
        QwenConfig config = EngineTest.config("qwen3");
        Path dir = Files.createTempDirectory("relat-mas-bf16");
        CheckpointWriter.writeRandom(dir, config, seed, 1);
        Options o = small(Method.RELAT_MAS).seed(seed).build();
        try (Engine bf16 = Engine.open(dir, new Device("cpu"), ScalarType.BFloat16);
                PointerScope scope = new PointerScope();
                Lora lora = EngineTest.noisyLora(config, seed)) {
            double loss = bf16.lossAndGradients(QUESTION, o, lora);
            Map<String, Tensor> rounded = EngineTest.bf16Weights(config, seed);
            Prompts prompts = Prompts.of(bf16.tokenizer(), QUESTION, o);
            List<long[]> agentPrompts = AgentPrompts.latent(bf16.tokenizer(), prompts, o);
            ReferenceRelat reference = new ReferenceRelat(config, rounded, lora, ScalarType.Double);
            Tensor expected = reference.multiAgentLoss(prompts, agentPrompts, o.latentSteps(), o);
            expected.backward();
            ReferenceRelat refBf16 = new ReferenceRelat(config, rounded, lora, ScalarType.BFloat16);
            refBf16.multiAgentLoss(prompts, agentPrompts, o.latentSteps(), o).backward();
            double[] l2s = EngineTest.relativeL2(config, lora, reference, refBf16);
            double l2 = l2s[0];
            double l2Reference = l2s[1];
            double lossError = Math.abs(loss - expected.item_double()) / Math.abs(expected.item_double());
            System.out.printf("relat-mas bf16 grads vs fp64: relative L2 error %.2e (the bf16 autograd reference:"
                    + " %.2e), loss error %.2e, %s%n", l2, l2Reference, lossError, Seeds.describe(seed));
            Seeds.record("relat-mas bf16: bf16 reference relative L2 error", l2Reference, Double.NaN, seed);
            TensorAssert.assertWithin(lossError, EngineTest.BF16_LOSS_BOUND, "relat-mas bf16: loss vs fp64");
            TensorAssert.assertWithin(l2, EngineTest.BF16_GRAD_BOUND,
                    "relat-mas bf16: LoRA gradients, relative L2 vs fp64");
        } finally {
            EngineTest.deleteTree(dir);
        }
    }

    static Stream<Arguments> gradientCases() {
        List<Arguments> cases = List.of(Arguments.of("qwen3", LatentMode.REALIGN),
                Arguments.of("qwen2", LatentMode.REALIGN), Arguments.of("qwen3", LatentMode.SOFT),
                Arguments.of("qwen2", LatentMode.IDENTITY));
        List<Arguments> selected = cases.stream().filter(c -> Seeds.selected(List.of(c.get()).toString())).toList();
        return Stream.generate(selected::stream).limit(Seeds.repeat()).flatMap(c -> c);
    }

    /**
     * relat-mas's loss and hand-composed LoRA gradients (through the reconstruction, every agent's
     * latent steps and every prompt prefill) against the fp64 autograd reference, at the bounds of
     * the single-agent ReLAT test ({@link EngineTest#FP32_GRAD_BOUND}); the textbook fp32 reference
     * is measured beside it. Soft runs in the flat regime (tau 1 on qwen3), as the single-agent case.
     * Measured over 16 seeds (3 agents x 2 latent steps; -Drelat.test.repeat=3 and single runs): the
     * worst gradient error was 2.5e-6 (the textbook fp32 reference: up to 3.6e-6), the worst loss
     * error 5.4e-8, so the single-agent bounds leave two orders of magnitude; leaving out the latent
     * links' backward (the keys and values alone carry the gradient) gave 2.1e-1.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("gradientCases")
    void relatMasLoraGradientsMatchAutograd(String arch, LatentMode mode) {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine(arch, seed);
        QwenConfig config = engine.model().config();
        String what = arch + " relat-mas " + mode;
        Options o = small(Method.RELAT_MAS).latentMode(mode).seed(seed)
                .temperatureLatent(EngineTest.SoftRegime.FLAT.tau(arch)).build();
        try (PointerScope scope = new PointerScope();
                Lora lora = EngineTest.noisyLora(config, seed)) {
            double loss = engine.lossAndGradients(QUESTION, o, lora);

            Map<String, Tensor> weights = EngineTest.weights(arch, seed);
            Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
            List<long[]> agentPrompts = AgentPrompts.latent(engine.tokenizer(), prompts, o);
            ReferenceRelat reference = new ReferenceRelat(config, weights, lora, ScalarType.Double);
            Tensor expectedLoss = reference.multiAgentLoss(prompts, agentPrompts, o.latentSteps(), o);
            expectedLoss.backward();
            double expected = expectedLoss.item_double();
            ReferenceRelat ref32 = new ReferenceRelat(config, weights, lora, ScalarType.Float);
            Tensor loss32 = ref32.multiAgentLoss(prompts, agentPrompts, o.latentSteps(), o);
            loss32.backward();
            double lossError = Math.abs(loss - expected) / Math.abs(expected);
            double lossError32 = Math.abs(loss32.item_double() - expected) / Math.abs(expected);
            double[] worsts = EngineTest.worstGradientErrors(config, lora, reference, ref32, what, seed);
            double worst = worsts[0];
            double worst32 = worsts[1];
            System.out.printf("engine grads %s vs fp64 autograd: worst LoRA relative error %.2e (the fp32 autograd "
                    + "reference: %.2e), loss error %.2e (fp32 reference: %.2e), %s%n", what, worst, worst32, lossError,
                    lossError32, Seeds.describe(seed));
            Seeds.record(what + ": fp32 reference LoRA gradient error", worst32, Double.NaN, seed);
            Seeds.record(what + ": engine error over the fp32 reference's", worst / worst32, Double.NaN, seed);
            double worstGradient = worst;
            assertAll(() -> TensorAssert.assertWithin(lossError, EngineTest.FP32_LOSS_BOUND, what + ": loss vs fp64"),
                    () -> TensorAssert.assertWithin(worstGradient, EngineTest.FP32_GRAD_BOUND,
                            what + ": worst LoRA gradient error vs fp64"));
        }
    }
}
