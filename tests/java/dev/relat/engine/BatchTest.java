package dev.relat.engine;

import static dev.relat.testing.TensorAssert.relativeError;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.model.Generation;
import dev.relat.model.KvCache;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.model.SamplingParams;
import dev.relat.testing.Seeds;
import dev.relat.testing.StopTokens;
import dev.relat.testing.TensorAssert;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Batched solving ({@link Engine#solveAll}) against solving each question alone, on the random
 * tiny checkpoints of {@link EngineTest}: the same losses and greedy answers, questions of very
 * different lengths, a question that stops long before the others, isolation between questions,
 * and the batched backward's gradients against the fp64 autograd reference.
 */
class BatchTest {
    /**
     * Relative difference between a question's loss in a batch and alone, fp32: the batch shares
     * its projections' GEMMs over more rows, which may round differently (the bound).
     */
    static final double LOSS_BOUND = 1e-5;

    /** From 1 to ~100 tokens: every stage sees very different lengths side by side. */
    static final List<String> QUESTIONS = List.of(
            "What is 2+2?",
            EngineTest.QUESTION,
            EngineTest.OTHER,
            "A farmer has 17 sheep, 9 goats and twice as many chickens as goats. He sells a third of the sheep, "
                    + "rounding down, buys 4 more goats, and then gives half of all his chickens to his neighbour, who "
                    + "already had 11 chickens. The neighbour then sells 5 chickens at the market for 3 dollars each. "
                    + "How many animals does the farmer have now, and how many dollars did the neighbour earn?",
            "Compute 9 - 4.",
            "Tom has 3 apples and buys 5 more. He gives 2 to Ann. How many apples does Tom have now?",
            "x?");

    static Options options(Method method, long seed) {
        return EngineTest.small().method(method).seed(seed).maxNewTokens(8).build();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen3", "qwen2"})
    void aBatchOfSevenGivesEachQuestionWhatItGetsAlone(String arch) {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine(arch, seed);
        Options o = options(Method.RELAT, seed);
        List<Result> batch = engine.solveAll(QUESTIONS, o);
        assertEquals(QUESTIONS.size(), batch.size());
        double worst = 0;
        for (int b = 0; b < QUESTIONS.size(); b++) {
            Result alone = engine.solve(QUESTIONS.get(b), o);
            worst = Math.max(worst, assertSameQuestion(alone, batch.get(b), arch + " question " + b, seed));
        }
        System.out.printf("%s relat B = 7: worst relative loss difference to alone %.2e (bound %.0e), %s%n", arch, worst,
                LOSS_BOUND, Seeds.describe(seed));
    }

    @Test
    void aBatchOfOneIsTheQuestionAlone() {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine("qwen3", seed);
        Options o = options(Method.RELAT, seed);
        Result alone = engine.solve(QUESTIONS.get(3), o);
        double error = assertSameQuestion(alone, engine.solveAll(List.of(QUESTIONS.get(3)), o).get(0), "B = 1", seed);
        System.out.printf("relat B = 1: relative loss difference to alone %.2e, %s%n", error, Seeds.describe(seed));
    }

    /** The methods without training (single, latent) and a multi-agent one, which solveAll runs one by one. */
    @Test
    void everyOtherMethodGivesTheAnswersItGivesAlone() {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine("qwen2", seed);
        List<String> three = QUESTIONS.subList(0, 3);
        for (Method method : List.of(Method.SINGLE, Method.LATENT, Method.LATENT_MAS)) {
            Options o = options(method, seed);
            List<Result> batch = engine.solveAll(three, o);
            for (int b = 0; b < three.size(); b++) {
                assertSameQuestion(engine.solve(three.get(b), o), batch.get(b), method + " question " + b, seed);
            }
        }
    }

    /** What a question gets must not depend on the other questions of its batch: not even a bit. */
    @Test
    void changingOneQuestionLeavesEveryOtherBitIdentical() {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine("qwen3", seed);
        Options o = options(Method.RELAT, seed);
        List<String> changed = new ArrayList<>(QUESTIONS);
        changed.set(2, "Name three prime numbers larger than one hundred and say why each of them is prime.");
        List<Result> before = engine.solveAll(QUESTIONS, o);
        List<Result> after = engine.solveAll(changed, o);
        for (int b = 0; b < QUESTIONS.size(); b++) {
            if (b == 2) continue;
            String what = "question " + b + " after question 2 changed, " + Seeds.describe(seed);
            assertEquals(before.get(b).losses(), after.get(b).losses(), what);
            assertEquals(before.get(b).answer(), after.get(b).answer(), what);
        }
        assertTrue(!before.get(2).losses().equals(after.get(2).losses()), "the changed question's losses changed");
    }

    /**
     * The batched decode with one sequence stopping after its first token while the others go on:
     * each gets the tokens the single-sequence decode gives it with its own adapter member.
     */
    @Test
    void aSequenceThatStopsEarlyLeavesTheOthersAsTheyAreAlone() {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine("qwen3", seed);
        QwenModel model = engine.model();
        QwenConfig config = model.config();
        List<long[]> prompts = new ArrayList<>();
        for (int b = 0; b < 4; b++) prompts.add(engine.tokenizer().encode(QUESTIONS.get(b)));
        try (PointerScope scope = new PointerScope();
                Lora lora = noisyMembers(config, 4, seed)) {
            List<long[]> free = alone(model, lora, prompts, Set.of()).stream().map(Generation.Result::tokens).toList();
            OptionalLong early = StopTokens.endingEarly(free, 1, 3);
            Assumptions.assumeTrue(early.isPresent(), "every token of sequence 1's first 3 comes as early in the "
                    + "others' answers, " + Seeds.describe(seed));
            long stop = early.getAsLong();
            List<Generation.Result> alone = alone(model, lora, prompts, Set.of(stop));
            int stopped = alone.get(1).tokens().length;
            assertTrue(stopped < 3, "sequence 1 stops early, " + Seeds.describe(seed));
            assertTrue(alone.stream().anyMatch(r -> r.tokens().length >= stopped + 3),
                    "another sequence decodes on, " + Seeds.describe(seed));

            List<KvCache> caches = new ArrayList<>();
            TensorVector logits = new TensorVector();
            for (int b = 0; b < prompts.size(); b++) {
                caches.add(model.newCache(160));
                logits.push_back(model.lastLogits(caches.get(b), prompts.get(b), lora.select(new long[] {b})));
            }
            List<Generation.Result> batch = Generation.decodeAll(model, caches, torch.cat(logits, 0),
                    generation(Set.of(stop)), lora::select);
            for (int b = 0; b < prompts.size(); b++) {
                assertArrayEquals(alone.get(b).tokens(), batch.get(b).tokens(), "sequence " + b + ", "
                        + Seeds.describe(seed));
                assertEquals(alone.get(b).reason(), batch.get(b).reason());
                caches.get(b).close();
            }
        }
    }

    /** The batched backward: every member's LoRA gradients and every loss against the fp64 autograd reference. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen3", "qwen2"})
    void batchedGradientsMatchAutograd(String arch) {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine(arch, seed);
        QwenConfig config = engine.model().config();
        Options o = EngineTest.small().method(Method.RELAT).latentMode(LatentMode.SOFT).seed(seed)
                .temperatureLatent(EngineTest.SoftRegime.FLAT.tau(arch)).build();
        List<String> three = List.of(QUESTIONS.get(3), QUESTIONS.get(0), QUESTIONS.get(1));
        try (PointerScope scope = new PointerScope();
                Lora batch = noisyMembers(config, three.size(), seed)) {
            List<Double> losses = engine.lossesAndGradients(three, o, batch);
            Map<String, Tensor> weights = EngineTest.weights(arch, seed);
            for (int b = 0; b < three.size(); b++) {
                try (Lora member = memberAlone(config, batch, b)) {
                    ReferenceRelat exact = new ReferenceRelat(config, weights, member, ScalarType.Double);
                    Tensor expectedLoss = exact.loss(Prompts.of(engine.tokenizer(), three.get(b), o), o.latentSteps(), o);
                    expectedLoss.backward();
                    ReferenceRelat ref32 = new ReferenceRelat(config, weights, member, ScalarType.Float);
                    ref32.loss(Prompts.of(engine.tokenizer(), three.get(b), o), o.latentSteps(), o).backward();
                    double lossError = Math.abs(losses.get(b) - expectedLoss.item_double())
                            / Math.abs(expectedLoss.item_double());
                    String what = arch + " batch member " + b;
                    double[] worst = EngineTest.worstGradientErrors(config, member, exact, ref32, what, seed);
                    System.out.printf("%s: worst LoRA gradient error vs fp64 %.2e (fp32 reference %.2e), loss %.2e, %s%n",
                            what, worst[0], worst[1], lossError, Seeds.describe(seed));
                    TensorAssert.assertWithin(lossError, EngineTest.FP32_LOSS_BOUND, what + ": loss vs fp64");
                    TensorAssert.assertWithin(worst[0], EngineTest.FP32_GRAD_BOUND, what + ": LoRA gradients vs fp64");
                }
            }
        }
    }

    @Test
    void badBatchesAreRefusedNamingTheQuestion() {
        long seed = TensorAssert.freshSeed();
        Engine engine = EngineTest.engine("qwen3", seed);
        Options o = options(Method.RELAT, seed);
        var blank = assertThrows(IllegalArgumentException.class, () -> engine.solveAll(List.of("fine", " "), o));
        assertTrue(blank.getMessage().startsWith("question 1: "), blank.getMessage());
        assertThrows(IllegalArgumentException.class, () -> engine.solveAll(List.of(), o));
        Options tight = EngineTest.small().method(Method.RELAT).seed(seed).maxContext(100).build();
        var tooLong = assertThrows(QuestionException.class, () -> engine.solveAll(QUESTIONS, tight));
        assertTrue(tooLong.getMessage().startsWith("question 3 of the batch: "), tooLong.getMessage());
        assertEquals(QUESTIONS.size(), engine.solveAll(QUESTIONS, o).size(), "the engine stays usable");
    }

    /** Asserts a question's batched result equals its alone result; returns the worst relative loss difference. */
    static double assertSameQuestion(Result alone, Result batched, String what, long seed) {
        String where = what + ", " + Seeds.describe(seed);
        assertEquals(alone.losses().size(), batched.losses().size(), where);
        double worst = 0;
        for (int i = 0; i < alone.losses().size(); i++) {
            double a = alone.losses().get(i);
            worst = Math.max(worst, Math.abs(batched.losses().get(i) - a) / Math.abs(a));
        }
        TensorAssert.assertWithin(worst, LOSS_BOUND, where + ": losses " + batched.losses() + " vs " + alone.losses());
        assertEquals(alone.answer(), batched.answer(), where + ": greedy answer");
        assertEquals(alone.answerTokens(), batched.answerTokens(), where);
        assertEquals(alone.promptTokens(), batched.promptTokens(), where);
        assertEquals(alone.latentTokens(), batched.latentTokens(), where);
        return worst;
    }

    /** Members with different small-noise B (B = 0 would make every dA zero and the test blind). */
    static Lora noisyMembers(QwenConfig config, int members, long seed) {
        long[] seeds = new long[members];
        for (int m = 0; m < members; m++) seeds[m] = seed + m;
        Lora lora = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, seeds, new Device("cpu"));
        for (int m = 0; m < members; m++) {
            try (Lora noisy = EngineTest.noisyLora(config, seed + m)) {
                for (int l = 0; l < config.numHiddenLayers(); l++) {
                    for (Projection p : Projection.values()) lora.member(m, l, p, 1).copy_(noisy.b(l, p));
                }
            }
        }
        return lora;
    }

    /** Member m of a batch as a lone adapter, its weights and gradients copied. */
    static Lora memberAlone(QwenConfig config, Lora batch, int m) {
        Lora lone = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, 0, new Device("cpu"));
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (Projection p : Projection.values()) {
                lone.a(l, p).copy_(batch.member(m, l, p, 0));
                lone.b(l, p).copy_(batch.member(m, l, p, 1));
                lone.gradA(l, p).copy_(batch.member(m, l, p, 2));
                lone.gradB(l, p).copy_(batch.member(m, l, p, 3));
            }
        }
        assertTrue(relativeError(lone.b(0, Projection.Q), batch.member(m, 0, Projection.Q, 1)) == 0);
        return lone;
    }

    static Generation.Options generation(Set<Long> stops) {
        return new Generation.Options(10, SamplingParams.GREEDY, stops);
    }

    /** Each prompt generated alone with its own member. */
    static List<Generation.Result> alone(QwenModel model, Lora lora, List<long[]> prompts, Set<Long> stops) {
        List<Generation.Result> results = new ArrayList<>();
        for (int b = 0; b < prompts.size(); b++) {
            try (KvCache cache = model.newCache(160);
                    Lora member = lora.select(new long[] {b})) {
                results.add(Generation.generate(model, cache, prompts.get(b), generation(stops), member));
            }
        }
        return results;
    }
}
