package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.Generation;
import dev.relat.model.KvCache;
import dev.relat.model.Projection;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import dev.relat.model.SamplingParams;
import dev.relat.ops.AdamW;
import dev.relat.ops.LatentStep;
import dev.relat.ops.LinearCrossEntropy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The ReLAT engine (relat-method.md): open a model once, solve many questions, each with the
 * method and options it is given. Per question: prompt, latent thought, test-time training of a
 * fresh LoRA adapter on the reconstruction loss (or the query-lm loss), answer, then the adapter
 * is dropped: nothing learned on one question reaches the next.
 *
 * <p>Thread safety: one engine per device. {@link #solve} may be called from any thread; calls are
 * serialised (a second caller waits for the first to finish), because a question owns the
 * device's memory and the model's scratch state while it runs.
 *
 * <p>Host traffic: inside the training loop only the loss scalar of each step crosses from the
 * device to the host ({@link HostReads}); during decoding one token id per step.
 */
public final class Engine implements AutoCloseable {
    private final QwenModel model;
    private final QwenTokenizer tokenizer;
    private final boolean ownsTokenizer;
    private final ReentrantLock lock = new ReentrantLock();
    private Tensor realignMatrix;
    private double targetNorm = Double.NaN;

    public Engine(QwenModel model, QwenTokenizer tokenizer) {
        this(model, tokenizer, false);
    }

    private Engine(QwenModel model, QwenTokenizer tokenizer, boolean ownsTokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.ownsTokenizer = ownsTokenizer;
        if (!model.relatAttention()) {
            throw new IllegalArgumentException("the engine needs head_dim 64 or 128 (relat's attention kernel); "
                    + "this model has head_dim " + model.config().headDim());
        }
    }

    /** Loads a Hugging Face checkout (weights, tokenizer, chat template) onto the device in dtype. */
    public static Engine open(Path checkout, Device device, ScalarType dtype) {
        QwenModel model = QwenModel.load(checkout, device, dtype);
        return new Engine(model, QwenTokenizer.load(checkout), true);
    }

    public QwenModel model() {
        return model;
    }

    public QwenTokenizer tokenizer() {
        return tokenizer;
    }

    public Result solve(String question, Options options) {
        return solve(question, options, PhaseListener.NONE);
    }

    /** Solves one question; the listener sees every phase (for NVTX ranges under --profile). */
    public Result solve(String question, Options options, PhaseListener listener) {
        if (options == null) throw new IllegalArgumentException("options must not be null");
        return solve(Prompts.of(tokenizer, question, options), options, listener);
    }

    Result solve(Prompts prompts, Options options, PhaseListener listener) {
        lock.lock();
        try {
            return new Question(prompts, options, listener == null ? PhaseListener.NONE : listener).run();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        if (ownsTokenizer) tokenizer.close();
    }

    // ---- hooks for the tests (package-private) ----------------------------------------------

    /** The losses and the adapter after the training loop of a question (the caller closes it). */
    record Trained(Lora lora, List<Double> losses) {}

    Trained train(String question, Options options) {
        Prompts prompts = Prompts.of(tokenizer, question, options);
        lock.lock();
        try (PointerScope scope = new PointerScope()) {
            Question q = new Question(prompts, options, PhaseListener.NONE);
            Lora lora = q.newLora();
            try (KvCache cache = model.newCache(q.capacity())) {
                q.train(cache, lora);
            }
            return new Trained(lora, List.copyOf(q.losses));
        } finally {
            lock.unlock();
        }
    }

    /** One training loss with its backward into lora's gradients (accumulated, no update). */
    double lossAndGradients(String question, Options options, Lora lora) {
        Prompts prompts = Prompts.of(tokenizer, question, options);
        lock.lock();
        try (PointerScope scope = new PointerScope()) {
            Question q = new Question(prompts, options, PhaseListener.NONE);
            try (KvCache cache = model.newCache(q.capacity());
                    KvCache reconCache = model.newCache(q.reconLength());
                    Backward main = new Backward(model, cache.capacity());
                    Backward recon = new Backward(model, q.reconLength())) {
                Tensor targets = model.ids(prompts.question());
                if (options.method() == Method.QUERY_LM) {
                    q.queryLmStep(cache, main, lora, targets, true);
                } else {
                    q.relatStep(cache, reconCache, main, recon, lora, targets, true);
                }
            }
            return q.losses.get(q.losses.size() - 1);
        } finally {
            lock.unlock();
        }
    }

    /** W_a of the realign mode, computed once per model in fp32 (relat-method.md). */
    private Tensor realignMatrix(double lambda) {
        if (realignMatrix == null) {
            try (PointerScope scope = new PointerScope()) {
                realignMatrix = LatentStep.realignMatrix(model.weights().lmHead(), model.weights().embedTokens(), lambda);
                realignMatrix.retainReference();
            }
        }
        return realignMatrix;
    }

    /** Mean row norm of E, once per model (one host read, outside any question loop). */
    private double targetNorm() {
        if (Double.isNaN(targetNorm)) targetNorm = LatentStep.meanRowNorm(model.weights().embedTokens());
        return targetNorm;
    }

    /** What one latent step's backward needs: its input h [1, d] and the forward's saved state. */
    private record Step(Tensor h, LatentStep.Soft soft, Tensor realignA) {}

    /** The state of one solve. */
    private final class Question {
        final Prompts p;
        final Options o;
        final PhaseListener listener;
        final Map<Phase, Long> nanos = new EnumMap<>(Phase.class);
        final List<Double> losses = new ArrayList<>();
        final int k;

        Question(Prompts p, Options o, PhaseListener listener) {
            this.p = p;
            this.o = o;
            this.listener = listener;
            this.k = o.method().thinksInLatents() ? o.latentSteps() : 0;
        }

        Result run() {
            DeviceMemory.reset(model.device());
            listener.questionStart();
            long[] answer;
            try (PointerScope scope = new PointerScope();
                    KvCache cache = model.newCache(capacity());
                    Lora lora = o.method().trains() ? newLora() : null) {
                if (o.method().trains()) train(cache, lora);
                answer = answer(cache, lora);
            } finally {
                listener.questionEnd();
            }
            return new Result(o.method(), tokenizer.decode(answer, true), p.prompt().length, k, answer.length,
                    losses, nanos, DeviceMemory.peak(model.device()));
        }

        int capacity() {
            return p.prompt().length + Math.max(k, 1) + o.maxNewTokens() + 1;
        }

        int reconLength() {
            return p.reconOpening().length + k + p.reconTail().length;
        }

        Lora newLora() {
            Set<Projection> targets = EnumSet.noneOf(Projection.class);
            for (Options.Target t : o.loraTargets()) targets.add(Projection.valueOf(t.name()));
            return new Lora(model.config(), targets, o.loraRank(), o.loraAlpha(), o.seed(), model.device());
        }

        // ---- training ----------------------------------------------------------------------

        void train(KvCache cache, Lora lora) {
            boolean relat = o.method() == Method.RELAT;
            try (KvCache reconCache = relat ? model.newCache(reconLength()) : null;
                    Backward main = new Backward(model, cache.capacity());
                    Backward recon = relat ? new Backward(model, reconLength()) : null;
                    AdamW optimizer = new AdamW(lora.parameters(), o.learningRate(), o.adamBeta1(), o.adamBeta2(),
                            o.adamEps(), o.weightDecay());
                    PointerScope scope = new PointerScope()) {
                Tensor targets = model.ids(p.question());
                for (int step = 0; step <= o.updateSteps(); step++) {
                    boolean update = step < o.updateSteps();
                    try (PointerScope stepScope = new PointerScope()) {
                        if (relat) {
                            relatStep(cache, reconCache, main, recon, lora, targets, update);
                        } else {
                            queryLmStep(cache, main, lora, targets, update);
                        }
                        if (update) {
                            begin(Phase.UPDATE);
                            optimizer.step(lora.gradients());
                            lora.zeroGradients();
                            end(Phase.UPDATE);
                        }
                    }
                }
            }
        }

        /** One reconstruction loss (and, when update, its backward into the LoRA gradients). */
        void relatStep(KvCache cache, KvCache reconCache, Backward main, Backward recon, Lora lora, Tensor targets,
                boolean update) {
            List<ForwardTrace> traces = new ArrayList<>();
            try {
                cache.clear();
                reconCache.clear();
                begin(Phase.PREFILL);
                ForwardTrace promptTrace = trace(update, traces);
                Tensor hPrompt = model.hidden(cache, model.embed(p.prompt()), promptTrace, lora);
                end(Phase.PREFILL);

                begin(Phase.LATENT_CHAIN);
                List<Tensor> latents = new ArrayList<>();
                List<Step> steps = new ArrayList<>();
                List<ForwardTrace> chain = new ArrayList<>();
                Tensor h = lastRow(hPrompt);
                for (int j = 0; j < k; j++) {
                    Tensor e = latent(h, steps);
                    latents.add(e);
                    if (j < k - 1) {
                        ForwardTrace t = trace(update, traces);
                        chain.add(t);
                        h = model.hidden(cache, e, t, lora);
                    }
                }
                end(Phase.LATENT_CHAIN);

                begin(Phase.RECONSTRUCTION_FORWARD);
                TensorVector parts = new TensorVector();
                parts.push_back(model.embed(p.reconOpening()));
                for (Tensor e : latents) parts.push_back(e);
                parts.push_back(model.embed(p.reconTail()));
                Tensor embeds = torch.cat(parts, 0);
                ForwardTrace reconTrace = trace(update, traces);
                Tensor hRecon = model.hidden(reconCache, embeds, reconTrace, lora);
                int n = p.question().length;
                int length = (int) hRecon.size(0);
                LinearCrossEntropy.Result ce = LinearCrossEntropy.forwardBackward(hRecon.narrow(0, length - n, n),
                        model.weights().lmHead(), targets);
                end(Phase.RECONSTRUCTION_FORWARD);
                losses.add(HostReads.loss(ce.loss()));
                if (!update) return;

                begin(Phase.BACKWARD);
                Tensor dRecon = torch.zeros_like(hRecon);
                dRecon.narrow(0, length - n, n).copy_(ce.dh());
                recon.reset();
                Tensor dEmbeds = recon.chunk(reconTrace, dRecon, reconCache, lora);
                Tensor[] dLatent = new Tensor[k];
                for (int j = 0; j < k; j++) dLatent[j] = dEmbeds.narrow(0, p.reconOpening().length + j, 1).clone();
                main.reset();
                for (int j = k - 1; j >= 1; j--) {
                    Tensor dh = latentBackward(steps.get(j), dLatent[j]);
                    dLatent[j - 1].add_(main.chunk(chain.get(j - 1), dh, cache, lora));
                }
                Tensor dPrompt = torch.zeros_like(hPrompt);
                lastRow(dPrompt).copy_(latentBackward(steps.get(0), dLatent[0]));
                main.chunk(promptTrace, dPrompt, cache, lora);
                end(Phase.BACKWARD);
            } finally {
                for (ForwardTrace t : traces) t.close();
            }
        }

        /** query-lm: next-token loss on the question tokens inside the prompt (no latent bottleneck). */
        void queryLmStep(KvCache cache, Backward main, Lora lora, Tensor targets, boolean update) {
            try (ForwardTrace trace = update ? new ForwardTrace() : null) {
                cache.clear();
                begin(Phase.RECONSTRUCTION_FORWARD);
                Tensor h = model.hidden(cache, model.embed(p.prompt()), trace, lora);
                int n = p.question().length;
                int from = p.questionStart() - 1;
                LinearCrossEntropy.Result ce = LinearCrossEntropy.forwardBackward(h.narrow(0, from, n),
                        model.weights().lmHead(), targets);
                end(Phase.RECONSTRUCTION_FORWARD);
                losses.add(HostReads.loss(ce.loss()));
                if (!update) return;
                begin(Phase.BACKWARD);
                Tensor dh = torch.zeros_like(h);
                dh.narrow(0, from, n).copy_(ce.dh());
                main.reset();
                main.chunk(trace, dh, cache, lora);
                end(Phase.BACKWARD);
            }
        }

        ForwardTrace trace(boolean record, List<ForwardTrace> all) {
            if (!record) return null;
            ForwardTrace t = new ForwardTrace();
            all.add(t);
            return t;
        }

        Tensor latent(Tensor h, List<Step> steps) {
            switch (o.latentMode()) {
                case SOFT -> {
                    LatentStep.Soft s = LatentStep.softForward(h, model.weights().lmHead(),
                            model.weights().embedTokens(), o.temperatureLatent());
                    steps.add(new Step(h, s, null));
                    return s.e();
                }
                case REALIGN -> {
                    LatentStep.Realign r = LatentStep.realignForward(h, realignMatrix(o.realignLambda()), targetNorm());
                    steps.add(new Step(h, null, r.a()));
                    return r.e();
                }
                default -> {
                    steps.add(new Step(h, null, null));
                    return LatentStep.identityForward(h, targetNorm());
                }
            }
        }

        Tensor latentBackward(Step s, Tensor de) {
            return switch (o.latentMode()) {
                case SOFT -> LatentStep.softBackward(s.h(), model.weights().lmHead(), model.weights().embedTokens(),
                        o.temperatureLatent(), s.soft(), de);
                case REALIGN -> LatentStep.realignBackward(s.realignA(), realignMatrix(o.realignLambda()), targetNorm(),
                        de, dev.relat.ops.DType.of(model.dtype()));
                case IDENTITY -> LatentStep.identityBackward(s.h(), targetNorm(), de);
            };
        }

        // ---- answer ------------------------------------------------------------------------

        long[] answer(KvCache cache, Lora lora) {
            cache.clear();
            Tensor logits;
            try (PointerScope scope = new PointerScope()) {
                begin(Phase.PREFILL);
                Tensor h = model.hidden(cache, model.embed(p.prompt()), null, lora);
                end(Phase.PREFILL);
                if (k > 0 && o.answerContext() == AnswerContext.LATENTS) {
                    begin(Phase.LATENT_CHAIN);
                    List<Step> ignored = new ArrayList<>();
                    h = lastRow(h);
                    for (int j = 0; j < k; j++) h = model.hidden(cache, latent(h, ignored), null, lora);
                    end(Phase.LATENT_CHAIN);
                }
                logits = model.lmHead(lastRow(h));
                logits.retainReference();
            }
            begin(Phase.ANSWER_DECODE);
            SamplingParams sampling = o.temperature() == 0 ? SamplingParams.GREEDY
                    : SamplingParams.sampled(o.temperature(), o.topK(), o.topP(), o.seed());
            Generation.Result r = Generation.decode(model, cache, logits, new Generation.Options(o.maxNewTokens(),
                    sampling, tokenizer.stopTokens(model.config())), lora);
            logits.releaseReference();
            end(Phase.ANSWER_DECODE);
            return r.tokens();
        }

        // ---- phases ------------------------------------------------------------------------

        private long phaseStart;

        void begin(Phase phase) {
            listener.begin(phase);
            phaseStart = System.nanoTime();
        }

        void end(Phase phase) {
            DeviceMemory.synchronize(model.device());
            nanos.merge(phase, System.nanoTime() - phaseStart, Long::sum);
            listener.end(phase);
        }
    }

    private static Tensor lastRow(Tensor t) {
        return t.narrow(0, t.size(0) - 1, 1);
    }
}
