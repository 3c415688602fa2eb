package dev.relat.engine;

import dev.relat.model.ForwardBuffers;
import dev.relat.model.Generation;
import dev.relat.model.KvCache;
import dev.relat.model.Projection;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import dev.relat.model.SamplingParams;
import dev.relat.ops.AdamW;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * One solve, used once: a fresh LoRA adapter trained for N updates on the question's training
 * loss ({@link RelatStep}, {@link RelatMasStep} or {@link QueryLmStep}), then the answer decoded
 * after the prompt and, by default, the latent thought, or by the agents of a multi-agent method
 * ({@link Collaboration}). Every phase is timed through {@link Phases}.
 */
final class Question {
    private final QwenModel model;
    private final QwenTokenizer tokenizer;
    private final LatentChain chain;
    private final Prompts prompts;
    private final Options options;
    private final PhaseListener listener;
    private final Phases phases;
    private final List<Double> losses = new ArrayList<>();
    private final int latentSteps;
    /** Every agent's prompt of a latent multi-agent method; empty for the others. */
    private final List<long[]> agentPrompts;

    Question(QwenModel model, QwenTokenizer tokenizer, LatentChain chain, Prompts prompts, Options options,
            PhaseListener listener) {
        this(model, tokenizer, chain, prompts, options, listener, new Phases(model.device(), listener));
    }

    /** A question of a batch: its phases are the batch's, timed once for all its questions. */
    Question(QwenModel model, QwenTokenizer tokenizer, LatentChain chain, Prompts prompts, Options options,
            PhaseListener listener, Phases phases) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.chain = chain;
        this.prompts = prompts;
        this.options = options;
        this.listener = listener;
        this.phases = phases;
        this.latentSteps = options.method().thinksInLatents() ? options.latentSteps() : 0;
        this.agentPrompts = latentMultiAgent() ? AgentPrompts.latent(tokenizer, prompts, options) : List.of();
    }

    Result run() {
        checkContext();
        DeviceMemory.reset(model.device());
        listener.questionStart();
        long[] answer;
        Collaboration team = options.method().multiAgent() ? new Collaboration(this, tokenizer) : null;
        try (PointerScope scope = new PointerScope();
                KvCache cache = options.method() == Method.TEXT_MAS ? null : model.newCache(capacity());
                Lora lora = options.method().trains() ? newLora() : null) {
            if (options.method().trains()) train(cache, lora);
            if (team == null) answer = answer(cache, lora);
            else answer = options.method() == Method.TEXT_MAS ? team.text(lora) : team.latent(cache, lora);
        } finally {
            listener.questionEnd();
        }
        String text = tokenizer.decode(answer, true);
        long peak = DeviceMemory.peak(model.device());
        if (team == null) {
            return new Result(options.method(), text, prompts.prompt().length, latentSteps, answer.length, losses,
                    phases.nanos(), peak);
        }
        List<Result.AgentRun> runs = team.runs();
        return new Result(options.method(), text, runs.stream().mapToInt(Result.AgentRun::promptTokens).sum(),
                runs.stream().mapToInt(Result.AgentRun::latentSteps).sum(), answer.length, losses, phases.nanos(), peak,
                runs);
    }

    /** latent-mas and relat-mas: the agents share one cache, the latent working memory. */
    private boolean latentMultiAgent() {
        return options.method() == Method.LATENT_MAS || options.method() == Method.RELAT_MAS;
    }

    Options options() {
        return options;
    }

    /** Every agent's prompt (latent-mas, relat-mas), in order. */
    List<long[]> agentPrompts() {
        return agentPrompts;
    }

    /** Positions of the working memory: every agent's prompt but the last one's and its K latent steps. */
    long memoryLength() {
        long n = 0;
        for (int i = 0; i < agentPrompts.size() - 1; i++) n += agentPrompts.get(i).length + latentSteps;
        return n;
    }

    /** Positions of the reconstruction sequence: opening, closing and q_1..q_{n-1} (relat-mas: after the memory). */
    int reconSequenceLength() {
        return prompts.reconOpening().length + prompts.reconTail().length;
    }

    QwenModel model() {
        return model;
    }

    Prompts prompts() {
        return prompts;
    }

    LatentChain chain() {
        return chain;
    }

    Phases phases() {
        return phases;
    }

    /** K: the latent steps of the thought (0 for a method that thinks in no latents). */
    int latentSteps() {
        return latentSteps;
    }

    /** The loss before each update and after the last, so far. */
    List<Double> losses() {
        return losses;
    }

    /**
     * Reads a step's loss scalar back to the host (the one read per step) and keeps it; a
     * non-finite loss ends the question: every later step and the answer would be garbage.
     */
    void recordLoss(Tensor loss) {
        double value = HostReads.loss(loss);
        losses.add(value);
        if (!Double.isFinite(value)) {
            throw new QuestionException("the training loss is " + value + " at update step " + (losses.size() - 1)
                    + ": training diverged (learning rate " + options.learningRate() + " too large?)");
        }
    }

    /**
     * Positions of the main cache: the prompt, the latent thought, the answer; for latent-mas and
     * relat-mas the working memory, then the judger's prompt and answer or (relat-mas) the
     * reconstruction sequence, whichever is longer.
     */
    int capacity() {
        return Math.toIntExact(positions());
    }

    private long positions() {
        if (latentMultiAgent()) {
            return memoryLength() + Math.max(judgerPositions(), trainsOnMemory() ? reconSequenceLength() : 0);
        }
        if (options.method() == Method.TEXT_MAS) {
            long longest = 0;
            for (Agents.Agent agent : options.agents().agents()) {
                longest = Math.max(longest, AgentPrompts.render(tokenizer, prompts, options, agent, List.of()).length);
            }
            return longest + options.maxNewTokens() + 1;
        }
        return (long) prompts.prompt().length + Math.max(latentSteps, 1) + options.maxNewTokens() + 1;
    }

    private long judgerPositions() {
        return (long) agentPrompts.get(agentPrompts.size() - 1).length + options.maxNewTokens() + 1;
    }

    private boolean trainsOnMemory() {
        return options.method() == Method.RELAT_MAS;
    }

    private int contextLimit() {
        int modelLimit = model.config().maxPositionEmbeddings();
        return options.maxContext() > 0 ? Math.min(options.maxContext(), modelLimit) : modelLimit;
    }

    private String limitText(int limit) {
        return "the context limit is " + limit + (limit < model.config().maxPositionEmbeddings()
                ? " (maxContext, --max-context)" : " (max_position_embeddings of the model)");
    }

    /**
     * text-mas: refuses an agent whose prompt, with the earlier agents' texts in it, leaves no room
     * for its answer (their lengths are known only once the earlier agents have decoded).
     */
    void checkAgentContext(String role, int promptTokens) {
        int limit = contextLimit();
        long needed = (long) promptTokens + options.maxNewTokens() + 1;
        if (needed > limit) {
            throw new QuestionException("agent '" + role + "' needs " + needed + " positions (" + promptTokens
                    + " prompt tokens, the earlier agents' texts included, + up to " + options.maxNewTokens()
                    + " answer tokens + 1); " + limitText(limit) + ": lower maxNewTokens (--max-new-tokens)");
        }
    }

    /**
     * Refuses, before anything is allocated, a question that needs more positions than the
     * context limit: max_position_embeddings, or the options' lower maxContext.
     */
    void checkContext() {
        int modelLimit = model.config().maxPositionEmbeddings();
        int limit = contextLimit();
        if (options.method().multiAgent()) {
            long needed = positions();
            if (needed > limit) {
                throw new QuestionException("the question needs " + needed + " positions ("
                        + (options.method() == Method.TEXT_MAS ? "the longest agent prompt + up to "
                                + options.maxNewTokens() + " answer tokens + 1"
                                : "the working memory of " + (options.agents().size() - 1) + " agents, "
                                        + memoryLength() + " positions, then the judger's prompt + up to "
                                        + options.maxNewTokens() + " answer tokens + 1"
                                        + (trainsOnMemory() ? ", or the reconstruction sequence if longer" : ""))
                        + "); " + limitText(limit)
                        + ": shorten the question or lower maxNewTokens (--max-new-tokens)");
            }
            return;
        }
        long recon = options.method().trains() ? reconLength() : 0;
        long needed = Math.max(positions(), recon);
        if (needed > limit) {
            throw new QuestionException("the question needs " + needed + " positions ("
                    + (needed == recon ? "its reconstruction pass: " + recon + " tokens"
                            : prompts.prompt().length + " prompt tokens + " + Math.max(latentSteps, 1)
                                    + " latent steps + up to " + options.maxNewTokens() + " answer tokens + 1")
                    + "); the context limit is " + limit + (limit < modelLimit ? " (maxContext, --max-context)"
                            : " (max_position_embeddings of the model)")
                    + ": shorten the question or lower maxNewTokens (--max-new-tokens)");
        }
    }

    /** Positions of the reconstruction pass: opening, latents, closing and q_1..q_{n-1}. */
    int reconLength() {
        return prompts.reconOpening().length + latentSteps + prompts.reconTail().length;
    }

    Lora newLora() {
        return new Lora(model.config(), loraTargets(options), options.loraRank(), options.loraAlpha(), options.seed(),
                model.device());
    }

    /** The projections the options' LoRA adapts. */
    static Set<Projection> loraTargets(Options options) {
        Set<Projection> targets = EnumSet.noneOf(Projection.class);
        for (Options.Target target : options.loraTargets()) targets.add(Projection.valueOf(target.name()));
        return targets;
    }

    /** The method's training step over cache (the caller closes it). */
    TrainingStep trainingStep(KvCache cache) {
        return switch (options.method()) {
            case RELAT -> new RelatStep(this, cache);
            case RELAT_MAS -> new RelatMasStep(this, cache);
            case QUERY_LM -> new QueryLmStep(this, cache);
            default -> throw new IllegalStateException(options.method() + " does not train");
        };
    }

    // ---- training ------------------------------------------------------------------------

    /** N updates of lora, each after one loss and its backward, and one loss after the last. */
    void train(KvCache cache, Lora lora) {
        try (TrainingStep step = trainingStep(cache);
                PointerScope scope = new PointerScope()) {
            Tensor targets = model.ids(prompts.question());
            updates(options, phases, lora, update -> step.run(lora, targets, update));
        }
    }

    /**
     * The training loop of a question or a batch: N + 1 steps (a loss, and its backward unless it
     * is the last), each but the last followed by one AdamW update of every adapter of lora and
     * zeroed gradients.
     */
    static void updates(Options options, Phases phases, Lora lora, Consumer<Boolean> step) {
        try (AdamW optimizer = new AdamW(lora.parameters(), options.learningRate(), options.adamBeta1(),
                options.adamBeta2(), options.adamEps(), options.weightDecay())) {
            for (int i = 0; i <= options.updateSteps(); i++) {
                boolean update = i < options.updateSteps();
                try (PointerScope stepScope = new PointerScope()) {
                    step.accept(update);
                    if (update) {
                        try (Phases.Scope phase = phases.open(Phase.UPDATE)) {
                            optimizer.step(lora.gradients());
                            lora.zeroGradients();
                        }
                    }
                }
            }
        }
    }

    // ---- answer --------------------------------------------------------------------------

    /** Prefill, the latent thought when the answer context holds it, then decoding. */
    long[] answer(KvCache cache, Lora lora) {
        cache.clear();
        Tensor logits;
        try (PointerScope scope = new PointerScope()) {
            Tensor h;
            try (Phases.Scope phase = phases.open(Phase.PREFILL)) {
                h = model.hidden(cache, model.embed(prompts.prompt()), null, lora);
            }
            if (latentSteps > 0 && options.answerContext() == AnswerContext.LATENTS) {
                try (Phases.Scope phase = phases.open(Phase.LATENT_CHAIN);
                        ForwardBuffers buffers = model.newBuffers(1)) {
                    h = lastRow(h);
                    for (int j = 0; j < latentSteps; j++) {
                        h = model.hidden(List.of(cache), new int[] {1}, chain.link(h).e(), lora, buffers);
                    }
                    h = h.clone(); // the buffers close here
                }
            }
            logits = model.lmHead(lastRow(h));
            logits.retainReference();
        }
        return decode(cache, logits, lora);
    }

    /** Decodes after logits (the last prompt position's, retained by the caller; released here). */
    long[] decode(KvCache cache, Tensor logits, Lora lora) {
        try (Phases.Scope phase = phases.open(Phase.ANSWER_DECODE)) {
            try {
                return Generation.decode(model, cache, logits, generationOptions(options, tokenizer, model), lora)
                        .tokens();
            } finally {
                logits.releaseReference();
            }
        }
    }

    /** The answer's limit, sampling (seeded with the question's seed) and stop tokens. */
    static Generation.Options generationOptions(Options options, QwenTokenizer tokenizer, QwenModel model) {
        SamplingParams sampling = options.temperature() == 0 ? SamplingParams.GREEDY
                : SamplingParams.sampled(options.temperature(), options.topK(), options.topP(), options.seed());
        return new Generation.Options(options.maxNewTokens(), sampling, tokenizer.stopTokens(model.config()));
    }

    /** The last row of every sequence of a batched forward's [T, d]: [B, d] (rows[b] rows each). */
    static Tensor lastRows(Tensor h, int[] rows) {
        if (rows.length == 1) return lastRow(h);
        long[] last = new long[rows.length];
        long end = 0;
        for (int b = 0; b < rows.length; b++) {
            end += rows[b];
            last[b] = end - 1;
        }
        return h.index_select(0, rowIndex(last, h));
    }

    static Tensor lastRow(Tensor t) {
        return t.narrow(0, t.size(0) - 1, 1);
    }

    /** Row numbers as an int64 index tensor on like's device (index_select's index). */
    static Tensor rowIndex(long[] rows, Tensor like) {
        Tensor index = Tensor.create(rows);
        return like.is_cpu() ? index : index.to(like.device(), ScalarType.Long);
    }
}
