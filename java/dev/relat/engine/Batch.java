package dev.relat.engine;

import dev.relat.model.Adapter;
import dev.relat.model.ForwardBuffers;
import dev.relat.model.Generation;
import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Several questions with the same options solved in one pass ({@link Engine#solveAll}): single,
 * latent and relat. Each question keeps its own KV caches and its own LoRA adapter (one member of
 * a stacked {@link Lora}); every stage runs once for the batch: the ragged prefill of all prompts,
 * the latent chain advancing one row per question, the reconstruction over all sequences with
 * each question's own cross-entropy, one backward, one AdamW call over every adapter, and the
 * answers decoded together, a finished question's row dropped ({@link Generation#decodeAll}).
 * The single-token passes (latent steps, their backward, decoding) then push B rows through each
 * weight instead of one.
 */
final class Batch {
    private final QwenModel model;
    private final QwenTokenizer tokenizer;
    private final Options options;
    private final PhaseListener listener;
    private final Phases phases;
    private final List<Question> questions = new ArrayList<>();

    /** Whether solveAll batches this method (the multi-agent methods and query-lm run one by one). */
    static boolean batches(Method method) {
        return method == Method.SINGLE || method == Method.LATENT || method == Method.RELAT;
    }

    Batch(QwenModel model, QwenTokenizer tokenizer, LatentChain chain, List<Prompts> prompts, Options options,
            PhaseListener listener) {
        if (!batches(options.method())) throw new IllegalArgumentException(options.method() + " is not batched");
        this.model = model;
        this.tokenizer = tokenizer;
        this.options = options;
        this.listener = listener;
        this.phases = new Phases(model.device(), listener);
        for (Prompts p : prompts) questions.add(new Question(model, tokenizer, chain, p, options, listener, phases));
    }

    /**
     * Solves every question. The results' phase times and peak device memory are the batch's (the
     * questions ran together); everything else is each question's own.
     *
     * @throws QuestionException naming the question (from 0) whose context is too long, before any
     *     work, or whose loss diverged
     */
    List<Result> run() {
        for (int b = 0; b < questions.size(); b++) {
            try {
                questions.get(b).checkContext();
            } catch (QuestionException e) {
                throw new QuestionException("question " + b + " of the batch: " + e.getMessage());
            }
        }
        DeviceMemory.reset(model.device());
        listener.questionStart();
        List<long[]> answers;
        List<KvCache> caches = new ArrayList<>();
        Lora lora = null;
        try (PointerScope scope = new PointerScope()) {
            for (Question q : questions) caches.add(model.newCache(q.capacity()));
            if (options.method().trains()) {
                long[] seeds = new long[questions.size()];
                Arrays.fill(seeds, options.seed());
                lora = new Lora(model.config(), Question.loraTargets(options), options.loraRank(), options.loraAlpha(),
                        seeds, model.device());
                train(caches, lora);
            }
            answers = answer(caches, lora);
        } finally {
            for (KvCache c : caches) c.close();
            if (lora != null) lora.close();
            listener.questionEnd();
        }
        long peak = DeviceMemory.peak(model.device());
        List<Result> results = new ArrayList<>();
        for (int b = 0; b < questions.size(); b++) {
            Question q = questions.get(b);
            long[] answer = answers.get(b);
            results.add(new Result(options.method(), tokenizer.decode(answer, true), q.prompts().prompt().length,
                    q.latentSteps(), answer.length, q.losses(), phases.nanos(), peak));
        }
        return results;
    }

    /** Every question's training loss with one backward into lora's members' gradients (the tests' hook). */
    List<Double> lossesAndGradients(Lora lora) {
        List<KvCache> caches = new ArrayList<>();
        try (PointerScope scope = new PointerScope()) {
            for (Question q : questions) caches.add(model.newCache(q.capacity()));
            List<Tensor> targets = new ArrayList<>();
            for (Question q : questions) targets.add(model.ids(q.prompts().question()));
            try (RelatStep step = new RelatStep(questions, caches)) {
                step.run(lora, targets, true);
            }
        } finally {
            for (KvCache c : caches) c.close();
        }
        List<Double> losses = new ArrayList<>();
        for (Question q : questions) losses.add(q.losses().get(q.losses().size() - 1));
        return losses;
    }

    /** N updates of every adapter, each after every question's loss and one backward, and one loss after the last. */
    private void train(List<KvCache> caches, Lora lora) {
        try (RelatStep step = new RelatStep(questions, caches);
                PointerScope scope = new PointerScope()) {
            List<Tensor> targets = new ArrayList<>();
            for (Question q : questions) targets.add(model.ids(q.prompts().question()));
            Question.updates(options, phases, lora, update -> step.run(lora, targets, update));
        }
    }

    /** Every prompt's prefill, the latent thought when the answer context holds it, then the batched decode. */
    private List<long[]> answer(List<KvCache> caches, Lora lora) {
        int count = questions.size();
        int[] promptRows = new int[count];
        int[] ones = new int[count];
        Arrays.fill(ones, 1);
        TensorVector parts = new TensorVector();
        for (int b = 0; b < count; b++) {
            caches.get(b).clear();
            long[] prompt = questions.get(b).prompts().prompt();
            promptRows[b] = prompt.length;
            parts.push_back(model.embed(prompt));
        }
        int latentSteps = questions.get(0).latentSteps();
        Tensor logits;
        Tensor h;
        try (Phases.Scope phase = phases.open(Phase.PREFILL)) {
            h = Question.lastRows(model.hidden(caches, promptRows, count == 1 ? parts.get(0) : torch.cat(parts, 0), null,
                    lora), promptRows);
        }
        if (latentSteps > 0 && options.answerContext() == AnswerContext.LATENTS) {
            try (Phases.Scope phase = phases.open(Phase.LATENT_CHAIN);
                    ForwardBuffers buffers = model.newBuffers(count)) {
                LatentChain chain = questions.get(0).chain();
                for (int j = 0; j < latentSteps; j++) h = model.hidden(caches, ones, chain.link(h).e(), lora, buffers);
                h = h.clone(); // the buffers close here
            }
        }
        logits = model.lmHead(h);
        List<Lora> selections = new ArrayList<>();
        try (Phases.Scope phase = phases.open(Phase.ANSWER_DECODE)) {
            Generation.BatchAdapter adapters = remaining -> {
                if (lora == null) return null;
                if (remaining.length == lora.members()) return lora;
                Lora selected = lora.select(remaining);
                selections.add(selected);
                return selected;
            };
            List<Generation.Result> decoded = Generation.decodeAll(model, caches, logits,
                    Question.generationOptions(options, tokenizer, model), adapters);
            List<long[]> answers = new ArrayList<>();
            for (Generation.Result r : decoded) answers.add(r.tokens());
            return answers;
        } finally {
            for (Lora l : selections) l.close();
        }
    }
}
