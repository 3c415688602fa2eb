package dev.relat.engine;

import dev.relat.model.Projection;
import dev.relat.model.QwenConfig;
import dev.relat.model.QwenNames;
import dev.relat.model.ReferenceQwen;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The plain-libtorch reference of the whole ReLAT loss: libtorch ops and autograd only. The
 * latent chain recomputes the whole sequence for every step (no KV cache), the latent step and the
 * cross-entropy are the textbook compositions (softmax, matmul, log_softmax, gather), and LoRA
 * tensors carry requires_grad, so loss.backward() gives the gradients the engine must match.
 */
final class ReferenceRelat {
    private final ReferenceQwen model;
    private final QwenConfig config;
    private final Map<String, Tensor[]> adapters = new HashMap<>();
    private final Map<String, Tensor[]> byProjection = new HashMap<>();

    /**
     * A copy of the engine adapter's A and B (requires_grad) on the reference model computing in
     * dtype: fp32 like Hugging Face, or fp64 as the accurate answer the gradient bounds refer to.
     */
    ReferenceRelat(QwenConfig config, Map<String, Tensor> weights, Lora lora, ScalarType dtype) {
        this.config = config;
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            for (Projection p : Projection.values()) {
                if (!lora.targets(layer, p)) continue;
                ScalarType loraType = dtype == ScalarType.Double ? ScalarType.Double : ScalarType.Float;
                Tensor a = lora.a(layer, p).detach().to(loraType).clone().requires_grad_(true);
                Tensor b = lora.b(layer, p).detach().to(loraType).clone().requires_grad_(true);
                adapters.put(QwenNames.layer(layer, name(p)), new Tensor[] {a, b});
                byProjection.put(layer + ":" + p, new Tensor[] {a, b});
            }
        }
        this.model = new ReferenceQwen(config, weights, dtype).withLora(adapters, lora.scale());
    }

    static String name(Projection p) {
        return switch (p) {
            case Q -> QwenNames.Q;
            case K -> QwenNames.K;
            case V -> QwenNames.V;
            case O -> QwenNames.O;
            case GATE -> QwenNames.GATE;
            case UP -> QwenNames.UP;
            case DOWN -> QwenNames.DOWN;
        };
    }

    /** {A, B} of a projection (their grad() after {@link #loss}(...).backward()). */
    Tensor[] adapter(int layer, Projection p) {
        return byProjection.get(layer + ":" + p);
    }

    /** The K latent embeddings after the prompt (keys / values kept by torch.cat, autograd through them). */
    List<Tensor> latentThought(long[] prompt, int k, Options o) {
        return latentThought(prompt, k, o, new ReferenceQwen.Cache(), false);
    }

    /** The latent thought; feedLast also runs e_K through the model (what the answer decodes after). */
    List<Tensor> latentThought(long[] prompt, int k, Options o, ReferenceQwen.Cache cache, boolean feedLast) {
        Tensor h = model.hiddenFromEmbeddings(torch.embedding(model.embeddingMatrix(), model.ids(prompt)), cache);
        List<Tensor> latents = new ArrayList<>();
        for (int j = 0; j < k; j++) {
            Tensor e = latent(lastRow(h), o);
            latents.add(e);
            if (j < k - 1 || feedLast) h = model.hiddenFromEmbeddings(e, cache);
        }
        lastHidden = h;
        return latents;
    }

    private Tensor lastHidden;

    private static Tensor lastRow(Tensor t) {
        return t.narrow(0, t.size(0) - 1, 1);
    }

    /** What a whole question gives: the greedy answer's ids and the losses (before each update, after the last). */
    record Solved(long[] answer, List<Double> losses) {}

    /**
     * One whole ReLAT question as a libtorch user would write it: autograd through the loss,
     * libtorch's own AdamW on the LoRA tensors, then the latent thought and greedy decoding
     * without gradients, keys / values kept by torch.cat.
     */
    Solved solve(Prompts p, Options o, Set<Long> stops) {
        return solve(p, List.of(), o, stops);
    }

    /**
     * {@link #solve(Prompts, Options, Set)} for any method; agentPrompts are every agent's prompt
     * of latent-mas and relat-mas (unused by the others).
     */
    Solved solve(Prompts p, List<long[]> agentPrompts, Options o, Set<Long> stops) {
        TensorVector params = new TensorVector();
        for (Tensor[] ab : byProjection.values()) {
            params.push_back(ab[0]);
            params.push_back(ab[1]);
        }
        AdamWOptions options = new AdamWOptions(o.learningRate());
        options.betas().put(0, o.adamBeta1()).put(1, o.adamBeta2());
        options.eps().put(o.adamEps());
        options.weight_decay().put(o.weightDecay());
        AdamW optimizer = new AdamW(params, options);
        List<Double> losses = new ArrayList<>();
        for (int step = 0; o.method().trains() && step <= o.updateSteps(); step++) {
            try (PointerScope scope = new PointerScope()) {
                optimizer.zero_grad();
                Tensor loss = switch (o.method()) {
                    case QUERY_LM -> queryLmLoss(p);
                    case RELAT_MAS -> multiAgentLoss(p, agentPrompts, o.latentSteps(), o);
                    default -> loss(p, o.latentSteps(), o);
                };
                losses.add(loss.item_double());
                if (step < o.updateSteps()) {
                    loss.backward();
                    optimizer.step();
                }
            }
        }
        long[] answer = new long[o.maxNewTokens()];
        int n = 0;
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            ReferenceQwen.Cache cache = new ReferenceQwen.Cache();
            Tensor h;
            if (o.method() == Method.RELAT_MAS || o.method() == Method.LATENT_MAS) {
                workingMemory(agentPrompts, o.latentSteps(), o, cache);
                h = model.hiddenFromEmbeddings(torch.embedding(model.embeddingMatrix(),
                        model.ids(agentPrompts.get(agentPrompts.size() - 1))), cache);
            } else {
                latentThought(p.prompt(), o.latentSteps(), o, cache, true);
                h = lastHidden;
            }
            while (n < answer.length) {
                long next = torch.matmul(lastRow(h), model.lmHeadMatrix().t()).argmax().item_long();
                if (stops.contains(next)) break;
                answer[n++] = next;
                h = model.hiddenFromEmbeddings(torch.embedding(model.embeddingMatrix(),
                        model.ids(new long[] {next})), cache);
            }
        }
        return new Solved(Arrays.copyOf(answer, n), losses);
    }

    private final List<Double> softEntropies = new ArrayList<>();

    /** The entropy (nats) of every soft latent step's distribution p computed so far, in order. */
    List<Double> softEntropies() {
        return softEntropies;
    }

    Tensor latent(Tensor h, Options o) {
        Tensor u = model.lmHeadMatrix();
        Tensor emb = model.embeddingMatrix();
        return switch (o.latentMode()) {
            case SOFT -> torch.matmul(softDistribution(h, u, o), emb.to(acc(h))).to(h.scalar_type());
            case REALIGN -> rescale(torch.matmul(h.to(acc(h)), realignMatrix(o).to(acc(h))), emb).to(h.scalar_type());
            case IDENTITY -> rescale(h.to(acc(h)), emb).to(h.scalar_type());
        };
    }

    /** p = softmax(U h / tau) in the accumulation type; its entropy is kept for {@link #softEntropies()}. */
    private Tensor softDistribution(Tensor h, Tensor u, Options o) {
        Tensor p = torch.matmul(h.to(acc(h)), u.to(acc(h)).t()).div(new Scalar(o.temperatureLatent())).softmax(-1);
        Tensor p64 = p.detach().to(ScalarType.Double);
        softEntropies.add(-p64.mul(p64.clamp_min(new Scalar(1e-300)).log()).sum().item_double());
        return p;
    }

    private static ScalarType acc(Tensor t) {
        return t.scalar_type().value == ScalarType.Double.value ? ScalarType.Double : ScalarType.Float;
    }

    /** W_a, a constant of the model (not differentiated): the same fp32 solve the engine uses. */
    private Tensor realignMatrix(Options o) {
        return dev.relat.ops.LatentStep.realignMatrix(model.lmHeadMatrix().to(ScalarType.Float),
                model.embeddingMatrix().to(ScalarType.Float), o.realignLambda());
    }

    private static Tensor rowNorms(Tensor x) {
        return x.pow(new Scalar(2)).sum(new long[] {-1}, true, new ScalarTypeOptional()).sqrt();
    }

    private static Tensor rescale(Tensor a, Tensor emb) {
        double target = rowNorms(emb.to(ScalarType.Float)).mean().item_double(); // fp32, as the engine
        return a.mul(new Scalar(target)).div(rowNorms(a).clamp_min(new Scalar(1e-6)));
    }

    /** The reconstruction logits [n, vocab] of the question rows. */
    Tensor reconstructionLogits(Prompts p, int k, Options o) {
        List<Tensor> latents = latentThought(p.prompt(), k, o);
        TensorVector parts = new TensorVector();
        parts.push_back(torch.embedding(model.embeddingMatrix(), model.ids(p.reconOpening())));
        for (Tensor e : latents) parts.push_back(e);
        parts.push_back(torch.embedding(model.embeddingMatrix(), model.ids(p.reconTail())));
        Tensor h = model.hiddenFromEmbeddings(torch.cat(parts, 0));
        int n = p.question().length;
        return torch.matmul(h.narrow(0, h.size(0) - n, n), model.lmHeadMatrix().t());
    }

    /** Mean cross-entropy of the question tokens given the latent thought. */
    Tensor loss(Prompts p, int k, Options o) {
        return crossEntropy(reconstructionLogits(p, k, o), p.question());
    }

    /**
     * relat-mas: every agent but the last prefills its prompt on top of the working memory (keys /
     * values kept by torch.cat, autograd through them) and appends m latent steps, each fed back;
     * then the reconstruction sequence [opening | closing + q_1..q_{n-1}] on top of it all, and the
     * mean cross-entropy of the question tokens at its end.
     */
    Tensor multiAgentLoss(Prompts p, List<long[]> agentPrompts, int m, Options o) {
        ReferenceQwen.Cache cache = new ReferenceQwen.Cache();
        workingMemory(agentPrompts, m, o, cache);
        long[] recon = Prompts.concat(p.reconOpening(), p.reconTail());
        Tensor h = model.hiddenFromEmbeddings(torch.embedding(model.embeddingMatrix(), model.ids(recon)), cache);
        int n = p.question().length;
        return crossEntropy(torch.matmul(h.narrow(0, h.size(0) - n, n), model.lmHeadMatrix().t()), p.question());
    }

    /** Every agent's prompt but the last one's, each followed by m latent steps fed back, into cache. */
    private void workingMemory(List<long[]> agentPrompts, int m, Options o, ReferenceQwen.Cache cache) {
        for (int i = 0; i < agentPrompts.size() - 1; i++) {
            Tensor h = model.hiddenFromEmbeddings(torch.embedding(model.embeddingMatrix(),
                    model.ids(agentPrompts.get(i))), cache);
            for (int j = 0; j < m; j++) h = model.hiddenFromEmbeddings(latent(lastRow(h), o), cache);
        }
    }

    /** query-lm: mean next-token cross-entropy of the question tokens inside the prompt. */
    Tensor queryLmLoss(Prompts p) {
        Tensor h = model.hiddenFromEmbeddings(torch.embedding(model.embeddingMatrix(), model.ids(p.prompt())));
        int n = p.question().length;
        Tensor logits = torch.matmul(h.narrow(0, p.questionStart() - 1, n), model.lmHeadMatrix().t());
        return crossEntropy(logits, p.question());
    }

    static Tensor crossEntropy(Tensor logits, long[] targets) {
        Tensor logp = logits.to(acc(logits)).log_softmax(-1);
        Tensor ids = Tensor.create(targets);
        if (!logits.is_cpu()) ids = ids.to(logits.device(), ScalarType.Long);
        return logp.gather(1, ids.unsqueeze(1)).mean().neg();
    }

    /** Fraction of question tokens the greedy reconstruction gets right. */
    double greedyAccuracy(Prompts p, int k, Options o) {
        Tensor predicted = reconstructionLogits(p, k, o).argmax(new LongOptional(-1), false);
        return predicted.eq(model.ids(p.question())).to(ScalarType.Float).mean().item_double();
    }

    QwenConfig config() {
        return config;
    }

    static ScalarTypeOptional none() {
        return new ScalarTypeOptional();
    }
}
