package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.ops.LinearCrossEntropy;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntUnaryOperator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * One ReLAT training step: the prompt's prefill, the latent chain of K links from its last hidden
 * state, the reconstruction pass [opening | latents | closing + q_1..q_{n-1}] through the model in
 * a cache of its own and the fused cross-entropy of q_1..q_n at its end. When updating, the
 * backward of all of it into the LoRA gradients, in reverse: the reconstruction pass, the latent
 * chain, the prefill. The chain and the prefill share one cache, so their backward shares the key
 * and value gradients ({@link Backward}).
 *
 * <p>Several questions (with the same options) step together, each with its own caches and its
 * own member of the LoRA: one ragged prefill of all prompts, the chain advancing one row per
 * question per link, one reconstruction pass over all their sequences, each question's
 * cross-entropy (its own mean) and one backward over the batch. No row attends to another
 * question's positions and no question's loss reaches another's adapter.
 */
final class RelatStep implements TrainingStep {
    private final List<Question> questions;
    private final QwenModel model;
    private final Phases phases;
    private final int latentSteps;
    private final List<KvCache> caches;
    private final List<KvCache> reconCaches = new ArrayList<>();
    private final Backward mainBackward;
    private final Backward reconBackward;

    /** A traced forward over one chunk: its final hidden states [T, d] and its trace (null: none). */
    private record Pass(Tensor h, ForwardTrace trace) {}

    /** The latent thought: the K links taken (one row per question), and the traces of the K - 1 latents fed back. */
    private record Thought(List<LatentChain.Link> links, List<ForwardTrace> fed) {}

    /** The reconstruction pass and each question's cross-entropy of its last n rows. */
    private record Reconstruction(Pass pass, List<LinearCrossEntropy.Result> ce) {}

    /** cache holds the prompt and the latent chain; the step opens the reconstruction's own. */
    RelatStep(Question question, KvCache cache) {
        this(List.of(question), List.of(cache));
    }

    /**
     * Questions with the same options (the same K, latent mode and phases), caches[b] holding
     * question b's prompt and latent chain; the step opens every reconstruction cache.
     */
    RelatStep(List<Question> questions, List<KvCache> caches) {
        this.questions = List.copyOf(questions);
        this.model = questions.get(0).model();
        this.phases = questions.get(0).phases();
        this.latentSteps = questions.get(0).latentSteps();
        this.caches = List.copyOf(caches);
        int[] capacities = new int[questions.size()];
        int[] reconLengths = new int[questions.size()];
        for (int b = 0; b < questions.size(); b++) {
            capacities[b] = caches.get(b).capacity();
            reconLengths[b] = questions.get(b).reconLength();
        }
        Backward main = null;
        try {
            for (int length : reconLengths) reconCaches.add(model.newCache(length));
            main = new Backward(model, capacities);
            this.mainBackward = main;
            this.reconBackward = new Backward(model, reconLengths);
        } catch (RuntimeException e) {
            if (main != null) main.close();
            for (KvCache c : reconCaches) c.close();
            throw e;
        }
    }

    @Override
    public void run(Lora lora, Tensor targets, boolean update) {
        run(lora, List.of(targets), update);
    }

    /** The step for every question: targets.get(b) holds question b's tokens q_1..q_n on the device. */
    void run(Lora lora, List<Tensor> targets, boolean update) {
        try (Traces traces = new Traces(update)) {
            for (KvCache c : caches) c.clear();
            for (KvCache c : reconCaches) c.clear();
            Pass prompt = prefill(lora, traces);
            Thought thought = think(prompt.h(), lora, traces);
            Reconstruction reconstruction = reconstruct(thought, lora, traces, targets);
            for (int b = 0; b < questions.size(); b++) questions.get(b).recordLoss(reconstruction.ce().get(b).loss());
            if (update) backward(prompt, thought, reconstruction, lora);
        }
    }

    private int[] rows(IntUnaryOperator perQuestion) {
        int[] rows = new int[questions.size()];
        for (int b = 0; b < rows.length; b++) rows[b] = perQuestion.applyAsInt(b);
        return rows;
    }

    private Prompts prompts(int b) {
        return questions.get(b).prompts();
    }

    /** Every prompt through the model into its question's cache. */
    private Pass prefill(Lora lora, Traces traces) {
        try (Phases.Scope phase = phases.open(Phase.PREFILL)) {
            ForwardTrace trace = traces.next();
            TensorVector parts = new TensorVector();
            for (int b = 0; b < questions.size(); b++) parts.push_back(model.embed(prompts(b).prompt()));
            Tensor embeds = questions.size() == 1 ? parts.get(0) : torch.cat(parts, 0);
            return new Pass(model.hidden(caches, rows(b -> prompts(b).prompt().length), embeds, trace, lora), trace);
        }
    }

    /**
     * K links from each prompt's last hidden state, one row per question; each latent but the
     * last is fed back through the model (the last one only enters the reconstruction).
     */
    private Thought think(Tensor hPrompt, Lora lora, Traces traces) {
        try (Phases.Scope phase = phases.open(Phase.LATENT_CHAIN)) {
            List<LatentChain.Link> links = new ArrayList<>();
            List<ForwardTrace> fed = new ArrayList<>();
            int[] ones = rows(b -> 1);
            Tensor h = Question.lastRows(hPrompt, rows(b -> prompts(b).prompt().length));
            for (int j = 0; j < latentSteps; j++) {
                LatentChain.Link link = questions.get(0).chain().link(h);
                links.add(link);
                if (j < latentSteps - 1) {
                    ForwardTrace trace = traces.next();
                    fed.add(trace);
                    h = model.hidden(caches, ones, link.e(), trace, lora);
                }
            }
            return new Thought(links, fed);
        }
    }

    /**
     * Every question's [opening | latents | tail] through the model; each question's fused
     * cross-entropy of its own question tokens at its end.
     */
    private Reconstruction reconstruct(Thought thought, Lora lora, Traces traces, List<Tensor> targets) {
        try (Phases.Scope phase = phases.open(Phase.RECONSTRUCTION_FORWARD)) {
            TensorVector parts = new TensorVector();
            for (int b = 0; b < questions.size(); b++) {
                parts.push_back(model.embed(prompts(b).reconOpening()));
                for (LatentChain.Link link : thought.links()) parts.push_back(link.e().narrow(0, b, 1));
                parts.push_back(model.embed(prompts(b).reconTail()));
            }
            Tensor embeds = torch.cat(parts, 0);
            ForwardTrace trace = traces.next();
            int[] lengths = rows(b -> questions.get(b).reconLength());
            Tensor h = model.hidden(reconCaches, lengths, embeds, trace, lora);
            List<LinearCrossEntropy.Result> ce = new ArrayList<>();
            long end = 0;
            for (int b = 0; b < questions.size(); b++) {
                end += lengths[b];
                int n = prompts(b).question().length;
                ce.add(LinearCrossEntropy.forwardBackward(h.narrow(0, end - n, n), model.weights().lmHead(),
                        targets.get(b)));
            }
            return new Reconstruction(new Pass(h, trace), ce);
        }
    }

    /** dL/d(every LoRA weight): back through the reconstruction, the latent chain and the prefill. */
    private void backward(Pass prompt, Thought thought, Reconstruction reconstruction, Lora lora) {
        try (Phases.Scope phase = phases.open(Phase.BACKWARD)) {
            Tensor[] dLatents = backThroughReconstruction(reconstruction, lora);
            backThroughChain(thought, dLatents, lora);
            backThroughPrompt(prompt, thought.links().get(0), dLatents[0], lora);
        }
    }

    /**
     * dL/de of every latent, one row per question: each question's cross-entropy gradient back
     * through the reconstruction pass (the sum of the questions' losses: each adapter sees only
     * its own question's).
     */
    private Tensor[] backThroughReconstruction(Reconstruction reconstruction, Lora lora) {
        Pass pass = reconstruction.pass();
        Tensor dh = torch.zeros_like(pass.h());
        long[][] latentRows = new long[latentSteps][questions.size()];
        long at = 0;
        for (int b = 0; b < questions.size(); b++) {
            int length = questions.get(b).reconLength();
            int n = prompts(b).question().length;
            dh.narrow(0, at + length - n, n).copy_(reconstruction.ce().get(b).dh());
            for (int j = 0; j < latentSteps; j++) latentRows[j][b] = at + prompts(b).reconOpening().length + j;
            at += length;
        }
        reconBackward.reset();
        Tensor dEmbeds = reconBackward.chunk(pass.trace(), dh, lora);
        Tensor[] dLatents = new Tensor[latentSteps];
        for (int j = 0; j < latentSteps; j++) {
            dLatents[j] = dEmbeds.index_select(0, Question.rowIndex(latentRows[j], dEmbeds));
        }
        return dLatents;
    }

    /**
     * The chain in reverse, latest link first: latent j's gradient goes back through its link to
     * the hidden state that made it, then through the forward that fed latent j - 1, adding to
     * latent j - 1's gradient. dLatents[0] is complete afterwards.
     */
    private void backThroughChain(Thought thought, Tensor[] dLatents, Lora lora) {
        mainBackward.reset();
        for (int j = latentSteps - 1; j >= 1; j--) {
            Tensor dh = thought.links().get(j).backward(dLatents[j]);
            dLatents[j - 1].add_(mainBackward.chunk(thought.fed().get(j - 1), dh, lora));
        }
    }

    /** The first latent's gradient back through its link into each prompt's last row, then through the prefill. */
    private void backThroughPrompt(Pass prompt, LatentChain.Link first, Tensor dFirst, Lora lora) {
        Tensor dh = torch.zeros_like(prompt.h());
        Tensor dLast = first.backward(dFirst);
        long end = 0;
        for (int b = 0; b < questions.size(); b++) {
            end += prompts(b).prompt().length;
            dh.narrow(0, end - 1, 1).copy_(dLast.narrow(0, b, 1));
        }
        mainBackward.chunk(prompt.trace(), dh, lora);
    }

    @Override
    public void close() {
        if (reconBackward != null) reconBackward.close();
        if (mainBackward != null) mainBackward.close();
        for (KvCache c : reconCaches) c.close();
    }

    /** The forward traces of one step (none when it takes no backward), closed together. */
    static final class Traces implements AutoCloseable {
        private final boolean record;
        private final List<ForwardTrace> all = new ArrayList<>();

        Traces(boolean record) {
            this.record = record;
        }

        /** A new trace for the next forward chunk, or null when the step records none. */
        ForwardTrace next() {
            if (!record) return null;
            ForwardTrace trace = new ForwardTrace();
            all.add(trace);
            return trace;
        }

        @Override
        public void close() {
            for (ForwardTrace trace : all) trace.close();
        }
    }
}
