package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.ops.LinearCrossEntropy;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * One relat-mas training step: the latent working memory of every agent but the last (its prompt's
 * prefill, then K latent steps, each fed back) in one cache, then the reconstruction sequence
 * [opening | closing + q_1..q_{n-1}] on top of it in the same cache, and the fused cross-entropy of
 * q_1..q_n at its end. The reconstruction sees the latent thoughts only through the cache's keys
 * and values.
 *
 * <p>The backward runs over the chunks in reverse (the reconstruction, then every latent step and
 * prompt prefill, latest first), sharing one set of key / value gradients ({@link Backward}): a
 * chunk's keys and values collect the gradient of every later chunk that attended to them before
 * the chunk itself is reached. A latent step's input embedding gradient goes back through its link
 * into the last row of the chunk before it, which made it; a prompt's input is token embeddings, so
 * the chunk before a prompt gets its gradient through the keys and values alone.
 */
final class RelatMasStep implements TrainingStep {
    private final Question question;
    private final QwenModel model;
    private final KvCache cache;
    private final Backward backward;

    /**
     * One forward chunk of the working memory: its final hidden states, its trace, and the link
     * that made its input from the previous chunk's last row (null for a prompt prefill).
     */
    private record Chunk(Tensor h, ForwardTrace trace, LatentChain.Link link) {}

    /** cache holds the working memory and then the reconstruction sequence (see {@link Question#capacity()}). */
    RelatMasStep(Question question, KvCache cache) {
        this.question = question;
        this.model = question.model();
        this.cache = cache;
        this.backward = new Backward(model, cache.capacity());
    }

    @Override
    public void run(Lora lora, Tensor targets, boolean update) {
        try (RelatStep.Traces traces = new RelatStep.Traces(update)) {
            cache.clear();
            List<Chunk> memory = workingMemory(lora, traces);
            Prompts prompts = question.prompts();
            int n = prompts.question().length;
            Tensor h;
            ForwardTrace trace;
            LinearCrossEntropy.Result ce;
            try (Phases.Scope phase = question.phases().open(Phase.RECONSTRUCTION_FORWARD)) {
                trace = traces.next();
                h = model.hidden(cache, model.embed(Prompts.concat(prompts.reconOpening(), prompts.reconTail())), trace,
                        lora);
                ce = LinearCrossEntropy.forwardBackward(h.narrow(0, h.size(0) - n, n), model.weights().lmHead(),
                        targets);
            }
            question.recordLoss(ce.loss());
            if (update) backward(memory, new Chunk(h, trace, null), ce.dh(), lora);
        }
    }

    /** Every agent but the last: its prompt's prefill, then K latent steps, each fed through the model. */
    private List<Chunk> workingMemory(Lora lora, RelatStep.Traces traces) {
        List<long[]> prompts = question.agentPrompts();
        List<Chunk> chunks = new ArrayList<>();
        for (int i = 0; i < prompts.size() - 1; i++) {
            Tensor h;
            try (Phases.Scope phase = question.phases().open(Phase.PREFILL)) {
                ForwardTrace trace = traces.next();
                h = model.hidden(cache, model.embed(prompts.get(i)), trace, lora);
                chunks.add(new Chunk(h, trace, null));
            }
            try (Phases.Scope phase = question.phases().open(Phase.LATENT_CHAIN)) {
                for (int j = 0; j < question.latentSteps(); j++) {
                    LatentChain.Link link = question.chain().link(Question.lastRow(h));
                    ForwardTrace trace = traces.next();
                    h = model.hidden(cache, link.e(), trace, lora);
                    chunks.add(new Chunk(h, trace, link));
                }
            }
        }
        return chunks;
    }

    /** dL/d(every LoRA weight): the reconstruction, then the working memory's chunks, latest first. */
    private void backward(List<Chunk> memory, Chunk reconstruction, Tensor dQuestionRows, Lora lora) {
        try (Phases.Scope phase = question.phases().open(Phase.BACKWARD)) {
            backward.reset();
            Tensor dh = torch.zeros_like(reconstruction.h());
            int n = (int) dQuestionRows.size(0);
            dh.narrow(0, dh.size(0) - n, n).copy_(dQuestionRows);
            backward.chunk(reconstruction.trace(), dh, lora);
            Chunk next = reconstruction;
            Tensor dNextInput = null;
            for (int c = memory.size() - 1; c >= 0; c--) {
                Chunk chunk = memory.get(c);
                dh = torch.zeros_like(chunk.h());
                if (next.link() != null) Question.lastRow(dh).copy_(next.link().backward(dNextInput));
                dNextInput = backward.chunk(chunk.trace(), dh, lora);
                next = chunk;
            }
        }
    }

    @Override
    public void close() {
        backward.close();
    }
}
