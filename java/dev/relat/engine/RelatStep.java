package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.ops.LinearCrossEntropy;
import java.util.ArrayList;
import java.util.List;
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
 */
final class RelatStep implements TrainingStep {
    private final Question question;
    private final QwenModel model;
    private final Prompts prompts;
    private final int latentSteps;
    private final KvCache cache;
    private final KvCache reconCache;
    private final Backward mainBackward;
    private final Backward reconBackward;

    /** A traced forward over one chunk: its final hidden states [T, d] and its trace (null: none). */
    private record Pass(Tensor h, ForwardTrace trace) {}

    /** The latent thought: the K links taken, and the traces of the K - 1 latents fed back. */
    private record Thought(List<LatentChain.Link> links, List<ForwardTrace> fed) {}

    /** The reconstruction pass and the cross-entropy of its last n rows, which start at row from. */
    private record Reconstruction(Pass pass, int from, LinearCrossEntropy.Result ce) {}

    /** cache holds the prompt and the latent chain; the step opens the reconstruction's own. */
    RelatStep(Question question, KvCache cache) {
        this.question = question;
        this.model = question.model();
        this.prompts = question.prompts();
        this.latentSteps = question.latentSteps();
        this.cache = cache;
        this.reconCache = model.newCache(question.reconLength());
        try {
            this.mainBackward = new Backward(model, cache.capacity());
            this.reconBackward = new Backward(model, question.reconLength());
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public void run(Lora lora, Tensor targets, boolean update) {
        try (Traces traces = new Traces(update)) {
            cache.clear();
            reconCache.clear();
            Pass prompt = prefill(lora, traces);
            Thought thought = think(prompt.h(), lora, traces);
            Reconstruction reconstruction = reconstruct(thought, lora, traces, targets);
            question.recordLoss(reconstruction.ce().loss());
            if (update) backward(prompt, thought, reconstruction, lora);
        }
    }

    /** The prompt through the model into the cache. */
    private Pass prefill(Lora lora, Traces traces) {
        try (Phases.Scope phase = question.phases().open(Phase.PREFILL)) {
            ForwardTrace trace = traces.next();
            return new Pass(model.hidden(cache, model.embed(prompts.prompt()), trace, lora), trace);
        }
    }

    /**
     * K links from the prompt's last hidden state; each latent but the last is fed back through
     * the model (the last one only enters the reconstruction).
     */
    private Thought think(Tensor hPrompt, Lora lora, Traces traces) {
        try (Phases.Scope phase = question.phases().open(Phase.LATENT_CHAIN)) {
            List<LatentChain.Link> links = new ArrayList<>();
            List<ForwardTrace> fed = new ArrayList<>();
            Tensor h = Question.lastRow(hPrompt);
            for (int j = 0; j < latentSteps; j++) {
                LatentChain.Link link = question.chain().link(h);
                links.add(link);
                if (j < latentSteps - 1) {
                    ForwardTrace trace = traces.next();
                    fed.add(trace);
                    h = model.hidden(cache, link.e(), trace, lora);
                }
            }
            return new Thought(links, fed);
        }
    }

    /** [opening | latents | tail] through the model; the fused cross-entropy of the question at its end. */
    private Reconstruction reconstruct(Thought thought, Lora lora, Traces traces, Tensor targets) {
        try (Phases.Scope phase = question.phases().open(Phase.RECONSTRUCTION_FORWARD)) {
            TensorVector parts = new TensorVector();
            parts.push_back(model.embed(prompts.reconOpening()));
            for (LatentChain.Link link : thought.links()) parts.push_back(link.e());
            parts.push_back(model.embed(prompts.reconTail()));
            Tensor embeds = torch.cat(parts, 0);
            ForwardTrace trace = traces.next();
            Tensor h = model.hidden(reconCache, embeds, trace, lora);
            int n = prompts.question().length;
            int from = (int) h.size(0) - n;
            LinearCrossEntropy.Result ce = LinearCrossEntropy.forwardBackward(h.narrow(0, from, n),
                    model.weights().lmHead(), targets);
            return new Reconstruction(new Pass(h, trace), from, ce);
        }
    }

    /** dL/d(every LoRA weight): back through the reconstruction, the latent chain and the prefill. */
    private void backward(Pass prompt, Thought thought, Reconstruction reconstruction, Lora lora) {
        try (Phases.Scope phase = question.phases().open(Phase.BACKWARD)) {
            Tensor[] dLatents = backThroughReconstruction(reconstruction, lora);
            backThroughChain(thought, dLatents, lora);
            backThroughPrompt(prompt, thought.links().get(0), dLatents[0], lora);
        }
    }

    /** dL/de of every latent: the cross-entropy's gradient back through the reconstruction pass. */
    private Tensor[] backThroughReconstruction(Reconstruction reconstruction, Lora lora) {
        Pass pass = reconstruction.pass();
        Tensor dh = torch.zeros_like(pass.h());
        dh.narrow(0, reconstruction.from(), prompts.question().length).copy_(reconstruction.ce().dh());
        reconBackward.reset();
        Tensor dEmbeds = reconBackward.chunk(pass.trace(), dh, reconCache, lora);
        Tensor[] dLatents = new Tensor[latentSteps];
        int first = prompts.reconOpening().length;
        for (int j = 0; j < latentSteps; j++) dLatents[j] = dEmbeds.narrow(0, first + j, 1).clone();
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
            dLatents[j - 1].add_(mainBackward.chunk(thought.fed().get(j - 1), dh, cache, lora));
        }
    }

    /** The first latent's gradient back through its link into the prompt's last row, then through the prefill. */
    private void backThroughPrompt(Pass prompt, LatentChain.Link first, Tensor dFirst, Lora lora) {
        Tensor dh = torch.zeros_like(prompt.h());
        Question.lastRow(dh).copy_(first.backward(dFirst));
        mainBackward.chunk(prompt.trace(), dh, cache, lora);
    }

    @Override
    public void close() {
        if (reconBackward != null) reconBackward.close();
        if (mainBackward != null) mainBackward.close();
        reconCache.close();
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
