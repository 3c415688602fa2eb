package dev.relat.engine;

import static dev.relat.testing.TensorAssert.relativeError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.model.CheckpointWriter;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.testing.TensorAssert;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine against the plain-libtorch autograd reference of the whole ReLAT loss
 * ({@link ReferenceRelat}) on random tiny checkpoints with the real Qwen3 tokenizer (so the
 * vocabulary is the real 151,936), plus training behaviour, determinism, host traffic and the
 * thread-safety contract.
 */
class EngineTest {
    /**
     * fp32 bound on LoRA gradients (the acceptance bound), against the fp64 autograd reference.
     * In the soft mode the gradient through a latent step is U^T (p * (E de - p.E de)) / tau, a
     * difference of sums over the 151,936-row vocabulary; on random weights p is nearly uniform and
     * fp32 arithmetic itself lands up to ~3.4e-4 from fp64 there (measured: the textbook fp32
     * autograd reference, 3.43e-4 on one seed where the engine was at 1.02e-4). So a gradient also
     * passes when it is no further from fp64 than FP32_REFERENCE_FACTOR times the fp32 reference.
     */
    static final double FP32_GRAD_BOUND = 1e-4;
    static final double FP32_REFERENCE_FACTOR = 1.5;
    /**
     * The soft mode on these random models is ill-conditioned for fp32 arithmetic as such: the
     * latent is a p-weighted mean of 151,936 random embedding rows, much shorter than any row, and
     * the next layer's RMSNorm scales its rounding back up, step after step. The textbook fp32
     * autograd reference lands 3.8e-6 to 2.3e-3 from fp64 there (measured over qwen3/qwen2, tau 0.7
     * and 0.05). The engine measured 6.9e-6 to 6.3e-4, below the fp32 reference in five of ten
     * runs. (The soft-step kernel's own bias on a flat softmax, which once added to this, is fixed
     * and tested in LatentStepTest.) So: within SOFT_GRAD_BOUND, or within FP32_REFERENCE_FACTOR
     * times the fp32 reference's own distance from fp64. A wrong backward term gives errors of
     * order 1.
     */
    static final double SOFT_GRAD_BOUND = 1e-3;
    /** A latent temperature at which the random model's LM-head logits spread like a trained model's. */
    static final double SHARP_TAU = 0.05;
    /**
     * bf16 bound on LoRA gradients vs fp64 (bf16 activations, fp32 LoRA and accumulation), soft
     * mode on a random model: measured 4.0e-2 to 2.8e-1 over the seeds run (the textbook bf16
     * autograd reference: 1.0e-1 to 2.1e-1). A wrong backward term gives errors of order 1.
     */
    static final double BF16_GRAD_BOUND = 5e-1;

    static final String QUESTION = "Natalia sold clips to 48 of her friends in April. How many clips did she sell?";
    static final String OTHER = "What is 17 times 3?";
    private static final Map<String, Engine> ENGINES = new HashMap<>();
    private static final Map<String, Long> SEEDS = new HashMap<>();

    /** qwen3 (QK-norm, untied, GQA 2) and qwen2 (q/k/v bias, tied), head_dim 64, two layers each. */
    static QwenConfig config(String arch) {
        return switch (arch) {
            case "qwen3" -> CheckpointWriter.config("qwen3", 128, 192, 2, 2, 1, 64, CheckpointWriter.QWEN_VOCAB, false,
                    "float32");
            case "qwen2" -> CheckpointWriter.config("qwen2", 128, 160, 2, 2, 2, 64, CheckpointWriter.QWEN_VOCAB, true,
                    "float32");
            default -> throw new IllegalArgumentException(arch);
        };
    }

    static synchronized Engine engine(String arch) {
        return ENGINES.computeIfAbsent(arch, a -> {
            try {
                long seed = TensorAssert.freshSeed();
                SEEDS.put(a, seed);
                Path dir = Files.createTempDirectory("relat-engine-" + a);
                dir.toFile().deleteOnExit();
                CheckpointWriter.writeRandom(dir, config(a), seed, 1);
                return Engine.open(dir, new Device("cpu"), ScalarType.Float);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    static Options.Builder small() {
        return Options.builder().latentSteps(4).updateSteps(2).loraRank(4).loraAlpha(8).maxNewTokens(6);
    }

    static Stream<Arguments> gradientCases() {
        List<Arguments> cases = new ArrayList<>();
        for (String arch : List.of("qwen3", "qwen2")) {
            for (LatentMode mode : LatentMode.values()) cases.add(Arguments.of(arch, Method.RELAT, mode, 0.7));
            cases.add(Arguments.of(arch, Method.RELAT, LatentMode.SOFT, SHARP_TAU));
            cases.add(Arguments.of(arch, Method.QUERY_LM, LatentMode.SOFT, 0.7));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2} tau {3}")
    @MethodSource("gradientCases")
    void loraGradientsMatchAutograd(String arch, Method method, LatentMode mode, double tau) {
        Engine engine = engine(arch);
        QwenConfig config = engine.model().config();
        long seed = TensorAssert.freshSeed();
        Options o = small().method(method).latentMode(mode).seed(seed).temperatureLatent(tau).build();
        try (PointerScope scope = new PointerScope();
                Lora lora = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, seed, new Device("cpu"))) {
            // B = 0 would make every A gradient zero: give B random values so both are exercised
            torch.manual_seed(seed);
            for (int l = 0; l < config.numHiddenLayers(); l++) {
                for (Projection p : Projection.values()) lora.b(l, p).copy_(torch.randn(lora.b(l, p).size(0),
                        lora.b(l, p).size(1)).mul(new Scalar(0.05)));
            }
            double loss = engine.lossAndGradients(QUESTION, o, lora);

            // the fp64 autograd reference: the fp32 one's own rounding is of the order of the bound
            ReferenceRelat reference = new ReferenceRelat(config,
                    CheckpointWriter.randomWeights(config, SEEDS.get(arch)), lora, ScalarType.Double);
            Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
            Tensor expectedLoss = method == Method.QUERY_LM ? reference.queryLmLoss(prompts)
                    : reference.loss(prompts, o.latentSteps(), o);
            expectedLoss.backward();
            double expected = expectedLoss.item_double();
            assertTrue(Math.abs(loss - expected) <= 1e-5 * Math.abs(expected),
                    "loss " + loss + " vs reference " + expected + " (seed " + seed + ")");
            // the fp32 autograd reference, to know how far fp32 arithmetic itself lands from fp64 here
            ReferenceRelat ref32 = new ReferenceRelat(config, CheckpointWriter.randomWeights(config, SEEDS.get(arch)),
                    lora, ScalarType.Float);
            (method == Method.QUERY_LM ? ref32.queryLmLoss(prompts) : ref32.loss(prompts, o.latentSteps(), o)).backward();
            double worst = 0;
            double worstFp32Reference = 0;
            for (int l = 0; l < config.numHiddenLayers(); l++) {
                for (Projection p : Projection.values()) {
                    Tensor[] ab = reference.adapter(l, p);
                    String what = arch + " " + method + " " + mode + " layer " + l + " " + p + " seed " + seed;
                    assertTrue(ab[0].grad().abs().max().item_double() > 0, "reference dA is zero: " + what);
                    double ea = relativeError(lora.gradA(l, p), ab[0].grad());
                    double eb = relativeError(lora.gradB(l, p), ab[1].grad());
                    double ra = relativeError(ref32.adapter(l, p)[0].grad(), ab[0].grad());
                    double rb = relativeError(ref32.adapter(l, p)[1].grad(), ab[1].grad());
                    double bound = mode == LatentMode.SOFT && method == Method.RELAT ? SOFT_GRAD_BOUND : FP32_GRAD_BOUND;
                    assertTrue(ea <= Math.max(bound, FP32_REFERENCE_FACTOR * ra),
                            "dA " + what + ": " + ea + " (fp32 autograd reference: " + ra + ")");
                    assertTrue(eb <= Math.max(bound, FP32_REFERENCE_FACTOR * rb),
                            "dB " + what + ": " + eb + " (fp32 autograd reference: " + rb + ")");
                    worst = Math.max(worst, Math.max(ea, eb));
                    worstFp32Reference = Math.max(worstFp32Reference, Math.max(ra, rb));
                }
            }
            System.out.printf("engine grads %s %s %s tau %s vs fp64 autograd: worst LoRA relative error %.2e "
                    + "(the fp32 autograd reference: %.2e), loss %.6f (seed %d)%n", arch, method, mode, tau, worst,
                    worstFp32Reference, loss, seed);
        }
    }

    /** The whole question (updates included) against the libtorch-autograd reference with libtorch's AdamW. */
    @Test
    void wholeQuestionMatchesTheAutogradReference() {
        Engine engine = engine("qwen3");
        QwenConfig config = engine.model().config();
        // the paper's lr 2e-5: Adam turns rounding noise in near-zero gradient components into
        // full-size steps of either sign, so at lr 1e-3 two correct implementations drift apart by
        // ~1e-4 in loss after two updates (measured); at 2e-5 the drift is far below the bound
        Options o = small().updateSteps(3).learningRate(2e-5).seed(TensorAssert.freshSeed()).build();
        Result r = engine.solve(QUESTION, o);
        ReferenceRelat.Solved expected;
        try (PointerScope scope = new PointerScope();
                Lora init = new Lora(config, EnumSet.allOf(Projection.class), o.loraRank(), o.loraAlpha(), o.seed(),
                        new Device("cpu"))) {
            expected = new ReferenceRelat(config, CheckpointWriter.randomWeights(config, SEEDS.get("qwen3")), init,
                    ScalarType.Float).solve(Prompts.of(engine.tokenizer(), QUESTION, o), o,
                    engine.tokenizer().stopTokens(config));
        }
        assertEquals(expected.losses().size(), r.losses().size());
        for (int i = 0; i < r.losses().size(); i++) {
            double a = r.losses().get(i), b = expected.losses().get(i);
            assertTrue(Math.abs(a - b) <= 1e-4 * Math.abs(b), "loss " + i + ": " + r.losses() + " vs " + expected.losses());
        }
        assertTrue(r.losses().get(3) < r.losses().get(0), "loss fell: " + r.losses());
        assertEquals(engine.tokenizer().decode(expected.answer(), true), r.answer(), "greedy answer");
        System.out.println("whole question: engine losses " + r.losses() + ", reference " + expected.losses());
    }

    /**
     * bf16 model (LoRA stays fp32) against the fp64 reference on the bf16-rounded weights. Bound:
     * BF16_GRAD_BOUND, stated from measurement (see the printed worst error).
     */
    @Test
    void bf16GradientsStayWithinTheStatedBound() throws IOException {
        String arch = "qwen3";
        engine(arch);
        long seedWeights = SEEDS.get(arch);
        QwenConfig config = config(arch);
        Path dir = Files.createTempDirectory("relat-engine-bf16");
        CheckpointWriter.writeRandom(dir, config, seedWeights, 1);
        long seed = TensorAssert.freshSeed();
        Options o = small().seed(seed).build();
        try (Engine bf16 = Engine.open(dir, new Device("cpu"), ScalarType.BFloat16);
                PointerScope scope = new PointerScope();
                Lora lora = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, seed, new Device("cpu"))) {
            torch.manual_seed(seed);
            for (int l = 0; l < config.numHiddenLayers(); l++) {
                for (Projection p : Projection.values()) lora.b(l, p).copy_(torch.randn(lora.b(l, p).size(0),
                        lora.b(l, p).size(1)).mul(new Scalar(0.05)));
            }
            double loss = bf16.lossAndGradients(QUESTION, o, lora);
            Map<String, Tensor> rounded = new HashMap<>();
            CheckpointWriter.randomWeights(config, seedWeights).forEach((k, v) -> rounded.put(k,
                    v.to(ScalarType.BFloat16).to(ScalarType.Double)));
            Prompts prompts = Prompts.of(bf16.tokenizer(), QUESTION, o);
            ReferenceRelat reference = new ReferenceRelat(config, rounded, lora, ScalarType.Double);
            Tensor expected = reference.loss(prompts, o.latentSteps(), o);
            expected.backward();
            // the textbook bf16 autograd reference (fp32 LoRA, HF's casts), for scale
            ReferenceRelat refBf16 = new ReferenceRelat(config, rounded, lora, ScalarType.BFloat16);
            refBf16.loss(prompts, o.latentSteps(), o).backward();
            double worst = 0, worstReference = 0;
            for (int l = 0; l < config.numHiddenLayers(); l++) {
                for (Projection p : Projection.values()) {
                    Tensor[] ab = reference.adapter(l, p);
                    Tensor[] rb = refBf16.adapter(l, p);
                    worst = Math.max(worst, Math.max(relativeError(lora.gradA(l, p), ab[0].grad()),
                            relativeError(lora.gradB(l, p), ab[1].grad())));
                    worstReference = Math.max(worstReference, Math.max(relativeError(rb[0].grad(), ab[0].grad()),
                            relativeError(rb[1].grad(), ab[1].grad())));
                }
            }
            System.out.printf("engine bf16 grads vs fp64: worst LoRA relative error %.2e (the bf16 autograd reference:"
                    + " %.2e), loss %.4f vs %.4f (seed %d)%n", worst, worstReference, loss, expected.item_double(), seed);
            assertTrue(Math.abs(loss - expected.item_double()) <= 2e-2 * Math.abs(expected.item_double()));
            assertTrue(worst <= Math.max(BF16_GRAD_BOUND, 2.5 * worstReference),
                    "bf16 worst LoRA gradient error " + worst + " vs the bf16 reference's " + worstReference + " (seed " + seed + ")");
        }
    }

    @Test
    void reconstructionLossFallsOverFiveSteps() {
        Engine engine = engine("qwen3");
        Engine.Trained t = engine.train(QUESTION, small().updateSteps(5).learningRate(1e-3).build());
        t.lora().close();
        List<Double> l = t.losses();
        assertEquals(6, l.size());
        assertTrue(l.get(5) < l.get(0), "loss did not fall: " + l);
        System.out.println("reconstruction loss over 5 steps, lr 1e-3: " + l);
    }

    /** Stated level: after 30 steps at lr 1e-2 at least 90% of the question tokens are greedily reconstructed. */
    @Test
    void questionBecomesGreedilyReconstructable() {
        Engine engine = engine("qwen3");
        QwenConfig config = engine.model().config();
        Options o = small().updateSteps(30).learningRate(1e-2).build();
        Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
        Map<String, Tensor> weights = CheckpointWriter.randomWeights(config, SEEDS.get("qwen3"));
        double before;
        try (Lora fresh = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, 0, new Device("cpu"))) {
            before = new ReferenceRelat(config, weights, fresh, ScalarType.Float).greedyAccuracy(prompts, 4, o);
        }
        Engine.Trained t = engine.train(QUESTION, o);
        double after = new ReferenceRelat(config, weights, t.lora(), ScalarType.Float).greedyAccuracy(prompts, 4, o);
        t.lora().close();
        System.out.printf("greedy reconstruction accuracy: %.3f before, %.3f after 30 steps (losses %s)%n", before,
                after, t.losses());
        assertTrue(after >= 0.9, "accuracy after training " + after + " (before " + before + ")");
        assertTrue(after > before);
    }

    @Test
    void everyMethodReportsWhatTheMethodDocLists() {
        Engine engine = engine("qwen2");
        for (Method m : Method.values()) {
            Result r = engine.solve(QUESTION, small().method(m).build());
            assertEquals(m, r.method());
            assertEquals(m.trains() ? 3 : 0, r.losses().size(), m + " losses");
            assertEquals(m.thinksInLatents() ? 4 : 0, r.latentTokens(), m + " latent tokens");
            assertTrue(r.promptTokens() > 10 && r.answerTokens() <= 6, m + " token counts");
            assertTrue(r.phaseNanos().containsKey(Phase.PREFILL) && r.phaseNanos().containsKey(Phase.ANSWER_DECODE));
            assertEquals(m.trains(), r.phaseNanos().containsKey(Phase.BACKWARD), m + " backward phase");
            assertEquals(m.trains(), r.phaseNanos().containsKey(Phase.UPDATE), m + " update phase");
            assertTrue(r.peakDeviceBytes() != 0, m + " peak memory");
            for (double loss : r.losses()) assertTrue(Double.isFinite(loss) && loss > 0, m + " loss " + loss);
        }
        Result q = engine.solve(QUESTION, small().answerContext(AnswerContext.QUESTION).build());
        assertEquals(3, q.losses().size());
    }

    @Test
    void questionBIsTheSameWhetherOrNotQuestionAWasSolvedFirst() {
        Engine engine = engine("qwen3");
        Options o = small().learningRate(1e-2).temperature(0.8).topP(0.9).seed(7).build();
        Result alone = engine.solve(OTHER, o);
        Result a = engine.solve(QUESTION, o);
        Result afterA = engine.solve(OTHER, o);
        assertEquals(alone.answer(), afterA.answer());
        assertEquals(alone.losses(), afterA.losses()); // exact doubles: bit-identical
        assertEquals(alone.answerTokens(), afterA.answerTokens());
        assertFalse(a.losses().equals(alone.losses()), "different questions should give different losses");
    }

    @Test
    void onlyOneLossScalarPerStepCrossesToTheHost() {
        Engine engine = engine("qwen3");
        long before = HostReads.lossReads();
        engine.solve(QUESTION, small().updateSteps(3).build());
        assertEquals(4, HostReads.lossReads() - before, "loss reads for 3 updates (before each, after the last)");
    }

    /** Nothing in the engine reads a tensor back except HostReads (and the once-per-model mean norm). */
    @Test
    void engineSourcesReadNothingElseBack() throws IOException {
        List<String> offenders = new ArrayList<>();
        try (Stream<Path> files = Files.list(Path.of("java/dev/relat/engine"))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (f.getFileName().toString().equals("HostReads.java")) continue;
                String src = Files.readString(f);
                for (String pattern : List.of(".item(", ".item_", ".cpu()", "tolist", "kCPU", "new Device(\"cpu\")")) {
                    if (src.contains(pattern)) offenders.add(f.getFileName() + ": " + pattern);
                }
            }
        }
        assertEquals(List.of(), offenders);
    }

    @Test
    void concurrentSolvesAreSerialised() throws Exception {
        Engine engine = engine("qwen2");
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        PhaseListener listener = new PhaseListener() {
            @Override
            public void questionStart() {
                events.add("start " + Thread.currentThread().getName());
            }

            @Override
            public void questionEnd() {
                events.add("end " + Thread.currentThread().getName());
            }
        };
        Options o = small().updateSteps(1).build();
        Thread t1 = new Thread(() -> engine.solve(QUESTION, o, listener), "one");
        Thread t2 = new Thread(() -> engine.solve(OTHER, o, listener), "two");
        t1.start();
        t2.start();
        t1.join();
        t2.join();
        assertEquals(4, events.size(), events.toString());
        for (int i = 0; i < 4; i += 2) {
            assertTrue(events.get(i).startsWith("start ") && events.get(i + 1).startsWith("end ")
                    && events.get(i).substring(6).equals(events.get(i + 1).substring(4)), "interleaved: " + events);
        }
    }

    @Test
    void badInputIsRejectedClearly() {
        Engine engine = engine("qwen2");
        var e = assertThrows(IllegalArgumentException.class, () -> engine.solve("  ", Options.defaults()));
        assertTrue(e.getMessage().contains("question"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> engine.solve(QUESTION, null));
    }
}
