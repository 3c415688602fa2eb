package dev.relat.engine;

import dev.relat.model.ForwardTrace;
import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.ops.LinearCrossEntropy;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The query-lm step: next-token loss on the question tokens inside the prompt (no latent bottleneck). */
final class QueryLmStep implements TrainingStep {
    private final Question question;
    private final QwenModel model;
    private final KvCache cache;
    private final Backward backward;

    QueryLmStep(Question question, KvCache cache) {
        this.question = question;
        this.model = question.model();
        this.cache = cache;
        this.backward = new Backward(model, cache.capacity());
    }

    @Override
    public void run(Lora lora, Tensor targets, boolean update) {
        Prompts prompts = question.prompts();
        int n = prompts.question().length;
        int from = prompts.questionStart() - 1;
        try (ForwardTrace trace = update ? new ForwardTrace() : null) {
            cache.clear();
            Tensor h;
            LinearCrossEntropy.Result ce;
            try (Phases.Scope phase = question.phases().open(Phase.RECONSTRUCTION_FORWARD)) {
                h = model.hidden(cache, model.embed(prompts.prompt()), trace, lora);
                ce = LinearCrossEntropy.forwardBackward(h.narrow(0, from, n), model.weights().lmHead(), targets);
            }
            question.recordLoss(ce.loss());
            if (!update) return;
            try (Phases.Scope phase = question.phases().open(Phase.BACKWARD)) {
                Tensor dh = torch.zeros_like(h);
                dh.narrow(0, from, n).copy_(ce.dh());
                backward.reset();
                backward.chunk(trace, dh, lora);
            }
        }
    }

    @Override
    public void close() {
        backward.close();
    }
}
