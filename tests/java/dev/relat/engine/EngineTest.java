package dev.relat.engine;

import static dev.relat.testing.TensorAssert.relativeError;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.model.CheckpointWriter;
import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import dev.relat.testing.Seeds;
import dev.relat.testing.TensorAssert;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
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
     * fp32 bounds against the fp64 autograd reference, relative: the worst LoRA gradient (max error
     * over max |gradient|, over every adapter) and the loss. From the seed sweep (docs/testing.md):
     * the worst gradient error in ~120 seeds per case was 1.0e-4 (qwen3, flat soft mode), where the
     * textbook fp32 autograd reference reached 8.8e-5 on its own; the errors have a heavy tail (the
     * p90 is 3-4x the median, the worst 4x the p90), so the bound sits ~5x above the worst, not 2x.
     * The loss: worst 1.4e-7.
     */
    static final double FP32_GRAD_BOUND = 5e-4, FP32_LOSS_BOUND = 1e-5;
    /**
     * The TRAINED soft regime makes the gradient ill-conditioned: each latent step's Jacobian
     * carries 1/tau times p(1 - p) over near-tied candidates and the steps compound it. At K = 4 the
     * fp32 results landed up to 2.9e-1 (engine) and 6.8e-2 (textbook fp32 reference) from fp64, so
     * that case tested nothing; at K = 2 the worst of 60 seeds per architecture was 9.2e-4 (the
     * reference 3.5e-4; the engine / reference ratio has a median of ~1 and the heavy tail of a
     * ratio of two independent errors). Bound ~5x the worst, as above.
     */
    static final double TRAINED_GRAD_BOUND = 5e-3;
    static final int TRAINED_LATENT_STEPS = 2;
    /**
     * The latent distribution p = softmax(U h / tau) of the soft mode, set through tau on these
     * random models (their LM-head logits have a standard deviation of ~1 for qwen3's N(0, 1/d)
     * head, ~2.8 for qwen2's tied N(0, 0.25^2) embeddings). An almost one-hot regime (tau 0.05,
     * entropy ~0.1 nats) was measured and left out: its near-exact ties put even the textbook fp32
     * reference up to 1.16 (relative) from fp64, so no fp32 comparison there can mean anything.
     */
    enum SoftRegime {
        /**
         * What a trained Qwen's next-token distribution looks like: a few candidates carry the
         * mass, entropy ~0.5-3 nats (an 8B model's cross-entropy on web text is ~2 nats per token,
         * lower on its own reasoning). Logit spread ~6.5 / tau; measured mean entropy of the
         * latent steps: median 2.1 (qwen3) and 2.0 (qwen2) nats, recorded per case. K = 2 (see
         * TRAINED_GRAD_BOUND).
         */
        TRAINED(0.15, 0.43),
        /**
         * Adversarial: tau 1 on a random head gives a near-uniform p over all 151,936 rows (entropy
         * ~11.4 nats): the latent is a near-cancelling mean of random embedding rows, far shorter
         * than any row, and the next RMSNorm scales its rounding back up, step after step. This is
         * where the soft step's own fp32 sum over the vocabulary once put the engine 6-20x further
         * from fp64 than the fp32 reference (blocked fp32 + fp64 sums now; latent_step.cpp); the
         * engine's median ratio to that reference is 0.9 now. Entropy ~11.4 nats (recorded).
         */
        FLAT(1.0, 2.8);

        final double qwen3Tau, qwen2Tau;

        SoftRegime(double qwen3Tau, double qwen2Tau) {
            this.qwen3Tau = qwen3Tau;
            this.qwen2Tau = qwen2Tau;
        }

        double tau(String arch) {
            return arch.equals("qwen3") ? qwen3Tau : qwen2Tau;
        }
    }
    /**
     * bf16 model (bf16 activations, fp32 LoRA and accumulation) vs fp64, relative L2 error over all
     * LoRA gradients: median 4.5e-2, worst 1.65e-1 over 25 seeds (the textbook bf16 autograd
     * reference: 5.3e-2, 1.57e-1 on the same seed); a wrong backward term gives errors of order 1.
     * The loss: worst 9.0e-4.
     */
    static final double BF16_GRAD_BOUND = 5e-1;
    static final double BF16_LOSS_BOUND = 2e-2;

    static final String QUESTION = "Natalia sold clips to 48 of her friends in April. How many clips did she sell?";
    static final String OTHER = "What is 17 times 3?";
    /** The engine of each architecture for the seed it was last asked for (one per architecture). */
    private static final Map<String, Map.Entry<Long, Engine>> ENGINES = new HashMap<>();

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

    /** The real Qwen3 tokenizer, loaded once: every engine of the class shares it. */
    private static QwenTokenizer tokenizer;

    /**
     * The engine on the random checkpoint of arch drawn from seed (written, loaded by the real
     * loading code, then deleted): a case's weights and data come from its one seed, so the seed in
     * its failure message replays it. One engine per architecture is kept; asking for another
     * seed replaces it.
     */
    static synchronized Engine engine(String arch, long seed) {
        Map.Entry<Long, Engine> cached = ENGINES.get(arch);
        if (cached != null && cached.getKey() == seed) return cached.getValue();
        if (cached != null) {
            // libtorch frees a weight when the garbage collector drops its Tensor; the Java heap
            // alone would not ask for a collection, and a sweep of thousands of seeds would grow
            ENGINES.remove(arch);
            lastWeights = null;
            System.gc();
        }
        Path dir = null;
        try {
            dir = Files.createTempDirectory("relat-engine-" + arch);
            Map<String, Tensor> weights = weights(arch, seed);
            CheckpointWriter.write(dir, config(arch), spec -> weights.get(spec.name()), 1);
            if (tokenizer == null) tokenizer = QwenTokenizer.load(dir);
            Engine engine = new Engine(QwenModel.load(dir, new Device("cpu"), ScalarType.Float), tokenizer);
            ENGINES.put(arch, Map.entry(seed, engine));
            return engine;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (dir != null) deleteTree(dir);
        }
    }

    /** The random weights of arch for seed (what its checkpoint holds), drawn once per seed. */
    static synchronized Map<String, Tensor> weights(String arch, long seed) {
        if (lastWeights == null || lastWeightsSeed != seed || !lastWeightsArch.equals(arch)) {
            lastWeights = CheckpointWriter.randomWeights(config(arch), seed);
            lastWeightsSeed = seed;
            lastWeightsArch = arch;
        }
        return lastWeights;
    }

    private static Map<String, Tensor> lastWeights;
    private static long lastWeightsSeed;
    private static String lastWeightsArch;

    static void deleteTree(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A fresh adapter whose B is small noise: with B = 0 every dA would be zero and a test blind to it. */
    static Lora noisyLora(QwenConfig config, long seed) {
        Lora lora = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, seed, new Device("cpu"));
        torch.manual_seed(seed);
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (Projection p : Projection.values()) {
                lora.b(l, p).copy_(torch.randn(lora.b(l, p).size(0), lora.b(l, p).size(1)).mul(new Scalar(0.05)));
            }
        }
        return lora;
    }

    /**
     * The worst per-adapter relative error of the engine's LoRA gradients (in {@code lora}) and of
     * {@code ref32}'s, against {@code exact}'s; fails if a reference dA is all zeros (a blind test).
     */
    static double[] worstGradientErrors(QwenConfig config, Lora lora, ReferenceRelat exact, ReferenceRelat ref32,
            String what, long seed) {
        double worst = 0, worst32 = 0;
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (Projection p : Projection.values()) {
                Tensor[] ab = exact.adapter(l, p);
                assertTrue(ab[0].grad().abs().max().item_double() > 0,
                        "reference dA is zero: " + what + " layer " + l + " " + p + ", " + Seeds.describe(seed));
                worst = Math.max(worst, Math.max(relativeError(lora.gradA(l, p), ab[0].grad()),
                        relativeError(lora.gradB(l, p), ab[1].grad())));
                worst32 = Math.max(worst32, Math.max(relativeError(ref32.adapter(l, p)[0].grad(), ab[0].grad()),
                        relativeError(ref32.adapter(l, p)[1].grad(), ab[1].grad())));
            }
        }
        return new double[] {worst, worst32};
    }

    /** The random checkpoint's weights rounded to bf16 and held in fp64: the exact maths of a bf16 engine. */
    static Map<String, Tensor> bf16Weights(QwenConfig config, long seed) {
        Map<String, Tensor> rounded = new HashMap<>();
        CheckpointWriter.randomWeights(config, seed).forEach((k, v) -> rounded.put(k,
                v.to(ScalarType.BFloat16).to(ScalarType.Double)));
        return rounded;
    }

    /**
     * Relative L2 error over every adapter gradient at once, against {@code exact}'s: {the engine's
     * (in {@code lora}), {@code textbook}'s}.
     */
    static double[] relativeL2(QwenConfig config, Lora lora, ReferenceRelat exact, ReferenceRelat textbook) {
        TensorVector engine = new TensorVector(), want = new TensorVector(), other = new TensorVector();
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (Projection p : Projection.values()) {
                for (int i = 0; i < 2; i++) {
                    engine.push_back((i == 0 ? lora.gradA(l, p) : lora.gradB(l, p)).flatten().to(ScalarType.Double));
                    want.push_back(exact.adapter(l, p)[i].grad().flatten().to(ScalarType.Double));
                    other.push_back(textbook.adapter(l, p)[i].grad().flatten().to(ScalarType.Double));
                }
            }
        }
        Tensor all = torch.cat(want);
        double norm = all.norm().item_double();
        return new double[] {torch.cat(engine).sub(all).norm().item_double() / norm,
            torch.cat(other).sub(all).norm().item_double() / norm};
    }

    static Options.Builder small() {
        return Options.builder().latentSteps(4).updateSteps(2).loraRank(4).loraAlpha(8).maxNewTokens(6);
    }

    /** Every case once, or -Drelat.test.repeat times for a seed sweep in one JVM. */
    static Stream<Arguments> gradientCases() {
        List<Arguments> cases = new ArrayList<>();
        for (String arch : List.of("qwen3", "qwen2")) {
            for (SoftRegime regime : SoftRegime.values()) cases.add(Arguments.of(arch, Method.RELAT, LatentMode.SOFT, regime));
            cases.add(Arguments.of(arch, Method.RELAT, LatentMode.REALIGN, SoftRegime.FLAT));
            cases.add(Arguments.of(arch, Method.RELAT, LatentMode.IDENTITY, SoftRegime.FLAT));
            cases.add(Arguments.of(arch, Method.QUERY_LM, LatentMode.SOFT, SoftRegime.FLAT));
        }
        List<Arguments> selected = cases.stream().filter(c -> Seeds.selected(List.of(c.get()).toString())).toList();
        return Stream.generate(selected::stream).limit(Seeds.repeat()).flatMap(c -> c);
    }

    /**
     * One loss and its LoRA gradients against the fp64 autograd reference, with the textbook fp32
     * autograd reference measured beside it (how far fp32 arithmetic itself lands from fp64 on
     * this case). The regime matters only for the soft relat cases.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("gradientCases")
    void loraGradientsMatchAutograd(String arch, Method method, LatentMode mode, SoftRegime regime) {
        long seed = TensorAssert.freshSeed();
        Engine engine = engine(arch, seed);
        QwenConfig config = engine.model().config();
        boolean soft = mode == LatentMode.SOFT && method == Method.RELAT;
        String what = arch + " " + method + " " + mode + (soft ? " " + regime : "");
        boolean trained = soft && regime == SoftRegime.TRAINED;
        Options o = small().latentSteps(trained ? TRAINED_LATENT_STEPS : 4).method(method).latentMode(mode).seed(seed)
                .temperatureLatent(regime.tau(arch)).build();
        try (PointerScope scope = new PointerScope();
                Lora lora = noisyLora(config, seed)) {
            double loss = engine.lossAndGradients(QUESTION, o, lora);

            Map<String, Tensor> weights = weights(arch, seed);
            ReferenceRelat reference = new ReferenceRelat(config, weights, lora, ScalarType.Double);
            Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
            Tensor expectedLoss = method == Method.QUERY_LM ? reference.queryLmLoss(prompts)
                    : reference.loss(prompts, o.latentSteps(), o);
            expectedLoss.backward();
            double expected = expectedLoss.item_double();
            ReferenceRelat ref32 = new ReferenceRelat(config, weights, lora, ScalarType.Float);
            Tensor loss32 = method == Method.QUERY_LM ? ref32.queryLmLoss(prompts) : ref32.loss(prompts, o.latentSteps(), o);
            loss32.backward();
            double lossError = Math.abs(loss - expected) / Math.abs(expected);
            double lossError32 = Math.abs(loss32.item_double() - expected) / Math.abs(expected);

            double[] worsts = worstGradientErrors(config, lora, reference, ref32, what, seed);
            double worst = worsts[0];
            double worst32 = worsts[1];
            double entropy = reference.softEntropies().stream().mapToDouble(Double::doubleValue).average().orElse(0);
            System.out.printf("engine grads %s vs fp64 autograd: worst LoRA relative error %.2e (the fp32 autograd "
                    + "reference: %.2e), loss error %.2e (fp32 reference: %.2e), latent entropy %.2f nats, %s%n",
                    what, worst, worst32, lossError, lossError32, entropy, Seeds.describe(seed));
            if (soft) Seeds.record(what + ": mean latent entropy (nats)", entropy, Double.NaN, seed);
            Seeds.record(what + ": fp32 reference LoRA gradient error", worst32, Double.NaN, seed);
            Seeds.record(what + ": fp32 reference loss error", lossError32, Double.NaN, seed);
            Seeds.record(what + ": engine error over the fp32 reference's", worst / worst32, Double.NaN, seed);
            double worstGradient = worst;
            assertAll(() -> TensorAssert.assertWithin(lossError, FP32_LOSS_BOUND, what + ": loss vs fp64"),
                    () -> TensorAssert.assertWithin(worstGradient, trained ? TRAINED_GRAD_BOUND : FP32_GRAD_BOUND,
                            what + ": worst LoRA gradient error vs fp64"));
        }
    }

    /** The whole question (updates included) against the libtorch-autograd reference with libtorch's AdamW. */
    @Test
    void wholeQuestionMatchesTheAutogradReference() {
        long seed = TensorAssert.freshSeed();
        Engine engine = engine("qwen3", seed);
        QwenConfig config = engine.model().config();
        // the paper's lr 2e-5: Adam turns rounding noise in near-zero gradient components into
        // full-size steps of either sign, so at lr 1e-3 two correct implementations drift apart by
        // ~1e-4 in loss after two updates (measured); at 2e-5 the drift is far below the bound
        Options o = small().updateSteps(3).learningRate(2e-5).seed(seed).build();
        Result r = engine.solve(QUESTION, o);
        ReferenceRelat.Solved expected;
        try (PointerScope scope = new PointerScope();
                Lora init = new Lora(config, EnumSet.allOf(Projection.class), o.loraRank(), o.loraAlpha(), o.seed(),
                        new Device("cpu"))) {
            expected = new ReferenceRelat(config, weights("qwen3", seed), init,
                    ScalarType.Float).solve(Prompts.of(engine.tokenizer(), QUESTION, o), o,
                    engine.tokenizer().stopTokens(config));
        }
        assertEquals(expected.losses().size(), r.losses().size());
        for (int i = 0; i < r.losses().size(); i++) {
            double a = r.losses().get(i), b = expected.losses().get(i);
            TensorAssert.assertWithin(Math.abs(a - b) / Math.abs(b), 1e-4, "whole question: loss " + i
                    + " vs the fp32 autograd reference");
        }
        assertTrue(r.losses().get(3) < r.losses().get(0), "loss fell: " + r.losses() + ", " + Seeds.describe(seed));
        assertEquals(engine.tokenizer().decode(expected.answer(), true), r.answer(), "greedy answer, "
                + Seeds.describe(seed));
        System.out.println("whole question: engine losses " + r.losses() + ", reference " + expected.losses());
    }

    /** The single-case tests that -Drelat.test.repeat repeats in a sweep. */
    static Stream<Integer> repeats() {
        return Stream.iterate(1, i -> i + 1).limit(Seeds.repeat());
    }

    /**
     * bf16 model (LoRA stays fp32) against the fp64 reference on the bf16-rounded weights, soft
     * mode at tau 1 (FLAT). Compared over all adapters at once (relative L2 error): per adapter, the
     * max error of a bf16 gradient is of order 1 wherever an adapter's gradient is small, for the
     * textbook bf16 reference as much as for the engine. Bound: BF16_GRAD_BOUND.
     */
    @ParameterizedTest(name = "run {0}")
    @MethodSource("repeats")
    void bf16GradientsStayWithinTheStatedBound(int run) throws IOException {
        String arch = "qwen3";
        long seed = TensorAssert.freshSeed();
        QwenConfig config = config(arch);
        Path dir = Files.createTempDirectory("relat-engine-bf16");
        CheckpointWriter.writeRandom(dir, config, seed, 1);
        Options o = small().seed(seed).build();
        try (Engine bf16 = Engine.open(dir, new Device("cpu"), ScalarType.BFloat16);
                PointerScope scope = new PointerScope();
                Lora lora = noisyLora(config, seed)) {
            double loss = bf16.lossAndGradients(QUESTION, o, lora);
            Map<String, Tensor> rounded = bf16Weights(config, seed);
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
            double[] l2s = relativeL2(config, lora, reference, refBf16);
            double l2 = l2s[0];
            double l2Reference = l2s[1];
            System.out.printf("engine bf16 grads vs fp64: relative L2 error %.2e, worst per adapter %.2e (the bf16 "
                    + "autograd reference: %.2e, %.2e), loss %.4f vs %.4f, %s%n", l2, worst, l2Reference,
                    worstReference, loss, expected.item_double(), Seeds.describe(seed));
            Seeds.record("bf16: worst per-adapter LoRA gradient error", worst, Double.NaN, seed);
            Seeds.record("bf16: bf16 reference worst per-adapter error", worstReference, Double.NaN, seed);
            Seeds.record("bf16: bf16 reference relative L2 error", l2Reference, Double.NaN, seed);
            TensorAssert.assertWithin(Math.abs(loss - expected.item_double()) / Math.abs(expected.item_double()),
                    BF16_LOSS_BOUND, "bf16: loss vs fp64");
            TensorAssert.assertWithin(l2, BF16_GRAD_BOUND, "bf16: LoRA gradients, relative L2 error vs fp64");
        }
    }

    @Test
    void reconstructionLossFallsOverFiveSteps() {
        long seed = TensorAssert.freshSeed();
        Engine engine = engine("qwen3", seed);
        Engine.Trained t = engine.train(QUESTION, small().updateSteps(5).learningRate(1e-3).seed(seed).build());
        t.lora().close();
        List<Double> l = t.losses();
        assertEquals(6, l.size());
        assertTrue(l.get(5) < l.get(0), "loss did not fall: " + l + ", " + Seeds.describe(seed));
        System.out.println("reconstruction loss over 5 steps, lr 1e-3: " + l);
    }

    /** Stated level: after 30 steps at lr 1e-2 at least 90% of the question tokens are greedily reconstructed. */
    @Test
    void questionBecomesGreedilyReconstructable() {
        long seed = TensorAssert.freshSeed();
        Engine engine = engine("qwen3", seed);
        QwenConfig config = engine.model().config();
        Options o = small().updateSteps(30).learningRate(1e-2).seed(seed).build();
        Prompts prompts = Prompts.of(engine.tokenizer(), QUESTION, o);
        Map<String, Tensor> weights = weights("qwen3", seed);
        double before;
        try (Lora fresh = new Lora(config, EnumSet.allOf(Projection.class), 4, 8, 0, new Device("cpu"))) {
            before = new ReferenceRelat(config, weights, fresh, ScalarType.Float).greedyAccuracy(prompts, 4, o);
        }
        Engine.Trained t = engine.train(QUESTION, o);
        double after = new ReferenceRelat(config, weights, t.lora(), ScalarType.Float).greedyAccuracy(prompts, 4, o);
        t.lora().close();
        System.out.printf("greedy reconstruction accuracy: %.3f before, %.3f after 30 steps (losses %s)%n", before,
                after, t.losses());
        Seeds.record("greedy reconstruction: 1 - accuracy after 30 steps", 1 - after, 0.1, seed);
        assertTrue(after >= 0.9, "accuracy after training " + after + " (before " + before + "), " + Seeds.describe(seed));
        assertTrue(after > before, "accuracy did not rise, " + Seeds.describe(seed));
    }

    @Test
    void aClosedEngineRefusesQuestionsAndLeavesBorrowedPartsOpen() {
        Engine shared = engine("qwen3", TensorAssert.freshSeed());
        Engine borrowing = new Engine(shared.model(), shared.tokenizer());
        borrowing.close();
        borrowing.close();  // idempotent
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> borrowing.solve(QUESTION, small().build()));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertTrue(shared.tokenizer().encode("still open").length > 0, "the borrowed tokenizer was closed");
    }

    @Test
    void openRefusesAHeadDimTheAttentionKernelLacks() throws IOException {
        Path dir = Files.createTempDirectory("relat-engine-hd32");
        try {
            CheckpointWriter.writeRandom(dir, CheckpointWriter.config("qwen3", 64, 128, 1, 2, 1, 32,
                    CheckpointWriter.QWEN_VOCAB, true, "float32"), 7, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Engine.open(dir, new Device("cpu"), ScalarType.Float));
            assertTrue(e.getMessage().contains("head_dim 32"), e.getMessage());
        } finally {
            deleteTree(dir);
        }
    }

    @Test
    void everyMethodReportsWhatTheMethodDocLists() {
        Engine engine = engine("qwen2", TensorAssert.freshSeed());
        for (Method m : Method.values()) {
            Result r = engine.solve(QUESTION, small().method(m).build());
            assertEquals(m, r.method());
            assertEquals(m.trains() ? 3 : 0, r.losses().size(), m + " losses");
            // a multi-agent method: K latent steps for each of the three agents before the judger
            assertEquals(m.thinksInLatents() ? (m.multiAgent() ? 12 : 4) : 0, r.latentTokens(), m + " latent tokens");
            assertEquals(m.multiAgent() ? 4 : 0, r.agents().size(), m + " agents");
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
        Engine engine = engine("qwen3", TensorAssert.freshSeed());
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
    void aQuestionLongerThanTheContextLimitIsRefusedBeforeAnyWork() {
        Engine engine = engine("qwen3", TensorAssert.freshSeed());
        var e = assertThrows(QuestionException.class, () -> engine.solve(QUESTION, small().maxContext(40).build()));
        assertTrue(e.getMessage().contains("the context limit is 40 (maxContext"), e.getMessage());
        assertTrue(e.getMessage().contains("positions"), e.getMessage());
        long start = System.nanoTime();
        e = assertThrows(QuestionException.class,
                () -> engine.solve(QUESTION, small().maxNewTokens(Integer.MAX_VALUE).build()));
        assertTrue(e.getMessage().contains("up to " + Integer.MAX_VALUE + " answer tokens"), e.getMessage());
        assertTrue(e.getMessage().contains("max_position_embeddings"), e.getMessage());
        assertTrue(System.nanoTime() - start < 2_000_000_000L, "refused before a cache is allocated");
        assertEquals(small().build().updateSteps() + 1, engine.solve(QUESTION, small().build()).losses().size(),
                "the engine goes on");
    }

    @Test
    void aDivergedTrainingLossEndsTheQuestionWithAnError() {
        Engine engine = engine("qwen2", TensorAssert.freshSeed());
        var e = assertThrows(QuestionException.class,
                () -> engine.solve(QUESTION, small().learningRate(1e20).updateSteps(3).build()));
        assertTrue(e.getMessage().contains("training diverged (learning rate 1.0E20"), e.getMessage());
        assertTrue(Double.isFinite(engine.solve(QUESTION, small().build()).losses().get(0)), "the engine goes on");
    }

    @Test
    void aQuestionWithAnotherRealignLambdaGetsItsOwnMatrix() {
        Engine engine = engine("qwen3", TensorAssert.freshSeed());
        Options.Builder realign = small().latentMode(LatentMode.REALIGN).learningRate(1e-2);
        Result small = engine.solve(QUESTION, realign.realignLambda(1e-5).build());
        Result large = engine.solve(QUESTION, realign.realignLambda(1e4).build());
        Result smallAgain = engine.solve(QUESTION, realign.realignLambda(1e-5).build());
        assertEquals(small.losses(), smallAgain.losses());
        assertFalse(small.losses().equals(large.losses()), "lambda changes W_a, so the latent chain and its loss");
    }

    @Test
    void onlyOneLossScalarPerStepCrossesToTheHost() {
        Engine engine = engine("qwen3", TensorAssert.freshSeed());
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
        Engine engine = engine("qwen2", TensorAssert.freshSeed());
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

    /** The phases of one question with one update, in order, per method (what --profile shows). */
    @Test
    void everyMethodRunsItsPhasesInOrder() {
        Engine engine = engine("qwen2", TensorAssert.freshSeed());
        List<String> answer = List.of("begin prefill", "end prefill", "begin latent chain", "end latent chain",
                "begin answer decode", "end answer decode");
        List<String> relatStep = List.of("begin prefill", "end prefill", "begin latent chain", "end latent chain",
                "begin reconstruction forward", "end reconstruction forward");
        List<String> queryLmStep = List.of("begin reconstruction forward", "end reconstruction forward");
        List<String> backwardAndUpdate = List.of("begin backward", "end backward", "begin update", "end update");
        List<String> decode = List.of("begin prefill", "end prefill", "begin answer decode", "end answer decode");
        List<String> memory = new ArrayList<>();
        for (int agent = 0; agent < 3; agent++) {
            memory.addAll(List.of("begin prefill", "end prefill", "begin latent chain", "end latent chain"));
        }
        List<String> teamAnswer = new ArrayList<>(memory);
        teamAnswer.addAll(decode);
        List<String> relatMasStep = new ArrayList<>(memory);
        relatMasStep.addAll(List.of("begin reconstruction forward", "end reconstruction forward"));
        Map<Method, List<List<String>>> expected = Map.of(
                Method.SINGLE, List.of(decode),
                Method.LATENT, List.of(answer),
                Method.RELAT, List.of(relatStep, backwardAndUpdate, relatStep, answer),
                Method.QUERY_LM, List.of(queryLmStep, backwardAndUpdate, queryLmStep, answer),
                Method.LATENT_MAS, List.of(teamAnswer),
                Method.TEXT_MAS, List.of(decode, decode, decode, decode),
                Method.RELAT_MAS, List.of(relatMasStep, backwardAndUpdate, relatMasStep, teamAnswer));
        for (Method m : Method.values()) {
            PhasesTest.Recorder recorder = new PhasesTest.Recorder();
            engine.solve(QUESTION, small().method(m).updateSteps(1).build(), recorder);
            List<String> events = new ArrayList<>(List.of("question start"));
            expected.get(m).forEach(events::addAll);
            events.add("question end");
            assertEquals(events, recorder.events, m.toString());
        }
    }

    /**
     * A throw inside a phase of a real question (here the first link of the latent chain, in
     * training) ends that phase and the question before it propagates: under --profile no NVTX
     * range stays open. The engine solves the next question as usual.
     */
    @Test
    void aThrowInsideAPhaseEndsThePhaseAndTheQuestion() {
        Engine engine = engine("qwen2", TensorAssert.freshSeed());
        Options o = small().updateSteps(1).build();
        PhasesTest.Recorder recorder = new PhasesTest.Recorder();
        LatentChain failing = h -> {
            throw new IllegalStateException("forced failure in the latent chain");
        };
        Question question = new Question(engine.model(), engine.tokenizer(), failing,
                Prompts.of(engine.tokenizer(), QUESTION, o), o, recorder);
        var e = assertThrows(IllegalStateException.class, question::run);
        assertEquals("forced failure in the latent chain", e.getMessage());
        assertEquals(List.of("question start", "begin prefill", "end prefill", "begin latent chain",
                "end latent chain", "question end"), recorder.events);
        PhasesTest.Recorder next = new PhasesTest.Recorder();
        assertEquals(2, engine.solve(QUESTION, o, next).losses().size());
        assertEquals("question end", next.events.get(next.events.size() - 1));
    }

    @Test
    void badInputIsRejectedClearly() {
        Engine engine = engine("qwen2", TensorAssert.freshSeed());
        var e = assertThrows(IllegalArgumentException.class, () -> engine.solve("  ", Options.defaults()));
        assertTrue(e.getMessage().contains("question"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> engine.solve(QUESTION, null));
    }
}
