package dev.relat.engine;

import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import dev.relat.ops.LatentStep;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The ReLAT engine (README, "The ReLAT engine"): open a model once, solve many questions, each
 * with the method and options it is given. Per question ({@link Question}): prompt, latent thought
 * ({@link LatentChain}), test-time training of a fresh LoRA adapter on the reconstruction loss
 * ({@link RelatStep}) or the query-lm loss ({@link QueryLmStep}), answer, then the adapter is
 * dropped: nothing learned on one question reaches the next.
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
    private double realignLambda;
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
            return question(prompts, options, listener == null ? PhaseListener.NONE : listener).run();
        } finally {
            lock.unlock();
        }
    }

    /** One question on this engine's model, its latent chain in the options' latent mode. */
    Question question(Prompts prompts, Options options, PhaseListener listener) {
        LatentChain chain = LatentChain.of(options, model, () -> realignMatrix(options.realignLambda()),
                this::targetNorm);
        return new Question(model, tokenizer, chain, prompts, options, listener);
    }

    @Override
    public void close() {
        if (realignMatrix != null) realignMatrix.releaseReference();
        realignMatrix = null;
        if (ownsTokenizer) tokenizer.close();
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
