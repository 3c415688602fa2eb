package dev.relat.engine;

import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import dev.relat.ops.LatentStep;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The ReLAT engine (docs/design.md, "The ReLAT engine"): open a model once, solve many questions, each
 * with the method and options it is given. Per question ({@link Question}): prompt, latent thought
 * ({@link LatentChain}), test-time training of a fresh LoRA adapter on the reconstruction loss
 * ({@link RelatStep}), the query-lm loss ({@link QueryLmStep}) or, for relat-mas, the
 * reconstruction after the agents' working memory ({@link RelatMasStep}), answer (by the agents'
 * judger for a multi-agent method, {@link Collaboration}), then the adapter is dropped: nothing
 * learned on one question reaches the next. {@link #solveAll} runs several questions in one
 * batched pass ({@link Batch}), each with its own adapter.
 *
 * <p>Thread safety: one engine per device. {@link #solve} and {@link #solveAll} may be called from
 * any thread; calls are serialised (a second caller waits for the first to finish), because a
 * question owns the device's memory and the model's scratch state while it runs. Who owns which native memory:
 * {@linkplain dev.relat.engine the package documentation}, "Native memory".
 *
 * <p>Host traffic: inside the training loop only the loss scalar of each step crosses from the
 * device to the host ({@link HostReads}); during decoding one token id per step (per batch step
 * for solveAll; on a GPU the ids are read back every few steps instead).
 */
public final class Engine implements AutoCloseable {
    private final QwenModel model;
    private final QwenTokenizer tokenizer;
    private final boolean ownsTokenizer;
    private final ReentrantLock lock = new ReentrantLock();
    private Tensor realignMatrix;
    private double realignLambda;
    private double targetNorm = Double.NaN;
    private boolean closed;  // guarded by lock

    /**
     * An engine over a model and tokenizer the caller already holds (both the same checkout). The
     * engine borrows them: {@link #close} closes neither, so one model can serve several engines in
     * turn (not at once: see the package documentation).
     *
     * @param model the model, on the device the questions run on
     * @param tokenizer its tokenizer, with the checkout's chat template
     * @throws IllegalArgumentException when the model's head_dim is not 64 or 128 (relat's
     *     attention kernel, which the backward needs)
     */
    public Engine(QwenModel model, QwenTokenizer tokenizer) {
        this(model, tokenizer, false);
    }

    private Engine(QwenModel model, QwenTokenizer tokenizer, boolean ownsTokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.ownsTokenizer = ownsTokenizer;
        if (!model.relatAttention()) throw headDim(model);
    }

    private static IllegalArgumentException headDim(QwenModel model) {
        return new IllegalArgumentException("the engine needs head_dim 64 or 128 (relat's attention kernel); "
                + "this model has head_dim " + model.config().headDim());
    }

    /**
     * Loads a Hugging Face checkout (weights, tokenizer, chat template) onto the device in dtype.
     * The engine owns the tokenizer it opens ({@link #close} closes it); the weights belong to
     * {@link #model()}, which has no close of its own (package documentation, "Native memory").
     *
     * @param checkout a Qwen2 / Qwen3 checkout directory: config.json, model.safetensors (or
     *     shards with model.safetensors.index.json), tokenizer.json, tokenizer_config.json
     * @param device where the weights and every question's tensors live, e.g. {@code cpu},
     *     {@code cuda:0}
     * @param dtype the weights' dtype: Float, BFloat16 or Half, converted while loading
     * @return the engine, ready to solve
     * @throws dev.relat.model.CheckpointException when the checkout is incomplete, malformed or not a
     *     supported Qwen model; the message names the file and the field or tensor
     * @throws IllegalArgumentException when the model's head_dim is not 64 or 128
     */
    public static Engine open(Path checkout, Device device, ScalarType dtype) {
        QwenModel model = QwenModel.load(checkout, device, dtype);
        if (!model.relatAttention()) throw headDim(model);  // before the tokenizer: nothing to close
        return new Engine(model, QwenTokenizer.load(checkout), true);
    }

    /**
     * The model questions run on. It stays the engine's (or its creator's): use it between
     * questions, not while another thread solves one.
     *
     * @return the model
     */
    public QwenModel model() {
        return model;
    }

    /**
     * The tokenizer prompts are encoded with; closed by {@link #close} when {@link #open} made it.
     *
     * @return the tokenizer
     */
    public QwenTokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * {@link #solve(String, Options, PhaseListener)} with no listener.
     *
     * @param question the question as the user would type it
     * @param options the method and every setting of this question
     * @return the answer and the question's measurements
     */
    public Result solve(String question, Options options) {
        return solve(question, options, PhaseListener.NONE);
    }

    /**
     * Solves one question: renders the prompt with the checkout's chat template, runs the
     * method's latent thought and test-time training, and decodes the answer. Waits while another
     * thread's question runs on this engine. Nothing the question allocates outlives the call (but
     * the realign matrix, which the engine keeps: see {@link #close}), and nothing it learns
     * reaches the next question.
     *
     * @param question the question as the user would type it (not blank)
     * @param options the method and every setting of this question
     * @param listener sees every phase (NVTX ranges under --profile); null for none
     * @return the answer and the question's measurements; plain Java data, no native memory
     * @throws IllegalArgumentException when the question is blank or options is null
     * @throws IllegalStateException when the checkout has no chat template, or its template does
     *     not place the user message exactly once
     * @throws QuestionException when the question needs more positions than the context limit
     *     (checked before any work) or its training loss became NaN or infinite; the engine stays
     *     usable
     * @throws dev.relat.ops.NativeKernelException when a relat kernel reports an error
     */
    public Result solve(String question, Options options, PhaseListener listener) {
        if (options == null) throw new IllegalArgumentException("options must not be null");
        lock.lock();
        try {
            requireOpen();
            return solve(Prompts.of(tokenizer, question, options), options, listener);
        } finally {
            lock.unlock();
        }
    }

    /**
     * {@link #solveAll(List, Options, PhaseListener)} with no listener.
     *
     * @param questions the questions as the user would type them
     * @param options the method and every setting, the same for every question
     * @return one result per question, in order
     */
    public List<Result> solveAll(List<String> questions, Options options) {
        return solveAll(questions, options, PhaseListener.NONE);
    }

    /**
     * Solves several questions with the same options in one batched pass: each question keeps its
     * own caches and its own test-time LoRA adapter, trained on its own loss only, while every
     * stage (prefill, latent chain, reconstruction, backward, optimizer, decoding) runs once for all
     * of them, so the single-token passes read each weight once per step for the whole batch
     * instead of once per question. Each question gets the losses and answer it gets alone, up to
     * the rounding of the shared projections (exact for greedy decoding in the tests). Methods
     * single, latent and relat are batched; the others run one question after another. All the
     * questions are in flight at once: callers bound the batch (relat eval --batch B).
     *
     * @param questions the questions as the user would type them (none blank), at least one
     * @param options the method and every setting, the same for every question (the same seed:
     *     each question's adapter starts as it would alone)
     * @param listener sees every phase of the batch (NVTX ranges under --profile); null for none
     * @return one result per question, in order; a batched method's phase times and peak device
     *     memory are the batch's, shared by its results
     * @throws IllegalArgumentException when the list is empty, a question is blank (named by its
     *     index) or options is null
     * @throws QuestionException when a question needs more positions than the context limit
     *     (checked before any work, named by its index) or the training loss diverged; nothing of
     *     the batch is returned, the engine stays usable
     */
    public List<Result> solveAll(List<String> questions, Options options, PhaseListener listener) {
        if (options == null) throw new IllegalArgumentException("options must not be null");
        if (questions == null || questions.isEmpty()) throw new IllegalArgumentException("no questions to solve");
        List<Prompts> prompts = new ArrayList<>();
        for (int b = 0; b < questions.size(); b++) {
            try {
                prompts.add(Prompts.of(tokenizer, questions.get(b), options));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("question " + b + ": " + e.getMessage(), e);
            }
        }
        PhaseListener phases = listener == null ? PhaseListener.NONE : listener;
        lock.lock();
        try {
            requireOpen();
            if (!Batch.batches(options.method())) {
                List<Result> results = new ArrayList<>();
                for (Prompts p : prompts) results.add(question(p, options, phases).run());
                return results;
            }
            return new Batch(model, tokenizer, chain(options), prompts, options, phases).run();
        } finally {
            lock.unlock();
        }
    }

    Result solve(Prompts prompts, Options options, PhaseListener listener) {
        lock.lock();
        try {
            requireOpen();
            return question(prompts, options, listener == null ? PhaseListener.NONE : listener).run();
        } finally {
            lock.unlock();
        }
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("this engine is closed");
    }

    /** One question on this engine's model, its latent chain in the options' latent mode. */
    Question question(Prompts prompts, Options options, PhaseListener listener) {
        return new Question(model, tokenizer, chain(options), prompts, options, listener);
    }

    private LatentChain chain(Options options) {
        return LatentChain.of(options, model, () -> realignMatrix(options.realignLambda()), this::targetNorm);
    }

    /**
     * Frees the realign matrix this engine cached ({@link LatentMode#REALIGN}) and closes the
     * tokenizer when {@link #open} made it. It does not free the model's weights: QwenModel has no
     * close; the garbage collector frees its tensors once the model is unreachable. Waits for a
     * question another thread is solving; a later solve throws {@link IllegalStateException}.
     * Idempotent.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) return;
            closed = true;
            if (realignMatrix != null) realignMatrix.releaseReference();
            realignMatrix = null;
            if (ownsTokenizer) tokenizer.close();
        } finally {
            lock.unlock();
        }
    }

    // ---- hooks for the tests (package-private) ----------------------------------------------

    /** The losses and the adapter after the training loop of a question (the caller closes it). */
    record Trained(Lora lora, List<Double> losses) {}

    Trained train(String question, Options options) {
        Prompts prompts = Prompts.of(tokenizer, question, options);
        lock.lock();
        try (PointerScope scope = new PointerScope()) {
            Question q = question(prompts, options, PhaseListener.NONE);
            Lora lora = q.newLora();
            try (KvCache cache = model.newCache(q.capacity())) {
                q.train(cache, lora);
            }
            return new Trained(lora, List.copyOf(q.losses()));
        } finally {
            lock.unlock();
        }
    }

    /** One training loss with its backward into lora's gradients (accumulated, no update). */
    double lossAndGradients(String question, Options options, Lora lora) {
        Prompts prompts = Prompts.of(tokenizer, question, options);
        lock.lock();
        try (PointerScope scope = new PointerScope()) {
            Question q = question(prompts, options, PhaseListener.NONE);
            try (KvCache cache = model.newCache(q.capacity());
                    TrainingStep step = q.trainingStep(cache)) {
                step.run(lora, model.ids(prompts.question()), true);
            }
            return q.losses().get(q.losses().size() - 1);
        } finally {
            lock.unlock();
        }
    }

    /** Each question's training loss with one batched backward into lora's members' gradients (relat). */
    List<Double> lossesAndGradients(List<String> questions, Options options, Lora lora) {
        List<Prompts> prompts = new ArrayList<>();
        for (String q : questions) prompts.add(Prompts.of(tokenizer, q, options));
        lock.lock();
        try {
            return new Batch(model, tokenizer, chain(options), prompts, options, PhaseListener.NONE)
                    .lossesAndGradients(lora);
        } finally {
            lock.unlock();
        }
    }

    /**
     * W_a of the realign mode in fp32 ({@link LatentMode#REALIGN}), computed once per model and
     * lambda: a question with another --realign-lambda gets its own, not the cached one.
     */
    private Tensor realignMatrix(double lambda) {
        if (realignMatrix == null || realignLambda != lambda) {
            if (realignMatrix != null) realignMatrix.releaseReference();
            try (PointerScope scope = new PointerScope()) {
                realignMatrix = LatentStep.realignMatrix(model.weights().lmHead(), model.weights().embedTokens(), lambda);
                realignMatrix.retainReference();
            }
            realignLambda = lambda;
        }
        return realignMatrix;
    }

    /** Mean row norm of E, once per model (one host read, outside any question loop). */
    private double targetNorm() {
        if (Double.isNaN(targetNorm)) targetNorm = LatentStep.meanRowNorm(model.weights().embedTokens());
        return targetNorm;
    }
}
