package dev.relat.engine;

import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * The answer pass of the multi-agent methods (LatentMAS's sequential setting), with each agent's
 * token counts and phase times ({@link Result.AgentRun}).
 *
 * <ul>
 *   <li>latent-mas, relat-mas ({@link #latent}): one KV cache is the working memory; each agent but
 *       the last prefills its prompt on top of it and appends K latent steps, every one fed back
 *       through the model; the last agent prefills its prompt on top of it all and decodes.
 *   <li>text-mas ({@link #text}): every agent prefills its prompt in a cache of its own and decodes
 *       text; the texts so far go into the next agent's prompt; the last agent's text is the answer.
 * </ul>
 */
final class Collaboration {
    private final Question question;
    private final QwenModel model;
    private final QwenTokenizer tokenizer;
    private final Options options;
    private final List<Agents.Agent> agents;
    private final List<Result.AgentRun> runs = new ArrayList<>();

    Collaboration(Question question, QwenTokenizer tokenizer) {
        this.question = question;
        this.model = question.model();
        this.tokenizer = tokenizer;
        this.options = question.options();
        this.agents = options.agents().agents();
    }

    /** Each agent's part of the last answer pass, in order. */
    List<Result.AgentRun> runs() {
        return runs;
    }

    /** The latent pipeline over cache (cleared first); the answer tokens of the last agent. */
    long[] latent(KvCache cache, Lora lora) {
        cache.clear();
        runs.clear();
        List<long[]> prompts = question.agentPrompts();
        int m = question.latentSteps();
        int last = agents.size() - 1;
        for (int i = 0; i < last; i++) {
            Map<Phase, Long> before = snapshot();
            try (PointerScope scope = new PointerScope()) {
                Tensor h;
                try (Phases.Scope phase = question.phases().open(Phase.PREFILL)) {
                    h = model.hidden(cache, model.embed(prompts.get(i)), null, lora);
                }
                try (Phases.Scope phase = question.phases().open(Phase.LATENT_CHAIN)) {
                    h = Question.lastRow(h);
                    for (int j = 0; j < m; j++) h = model.hidden(cache, question.chain().link(h).e(), null, lora);
                }
            }
            runs.add(new Result.AgentRun(agents.get(i).role(), prompts.get(i).length, m, 0, since(before)));
        }
        return answerAfter(cache, prompts.get(last), lora);
    }

    /** text-mas: every agent decodes; the last agent's tokens are the answer. */
    long[] text(Lora lora) {
        runs.clear();
        List<String[]> texts = new ArrayList<>();
        long[] tokens = new long[0];
        for (Agents.Agent agent : agents) {
            long[] prompt = AgentPrompts.render(tokenizer, question.prompts(), options, agent, texts);
            question.checkAgentContext(agent.role(), prompt.length);
            try (KvCache cache = model.newCache(prompt.length + options.maxNewTokens() + 1)) {
                tokens = answerAfter(cache, prompt, lora);
            }
            texts.add(new String[] {agent.role(), tokenizer.decode(tokens, true)});
        }
        return tokens;
    }

    /** One agent that decodes: its prompt on top of cache, then its text; recorded in runs. */
    private long[] answerAfter(KvCache cache, long[] prompt, Lora lora) {
        Map<Phase, Long> before = snapshot();
        Tensor logits;
        try (PointerScope scope = new PointerScope()) {
            Tensor h;
            try (Phases.Scope phase = question.phases().open(Phase.PREFILL)) {
                h = model.hidden(cache, model.embed(prompt), null, lora);
            }
            logits = model.lmHead(Question.lastRow(h));
            logits.retainReference();
        }
        long[] tokens = question.decode(cache, logits, lora);
        runs.add(new Result.AgentRun(agents.get(runs.size()).role(), prompt.length, 0, tokens.length, since(before)));
        return tokens;
    }

    private Map<Phase, Long> snapshot() {
        return new EnumMap<>(question.phases().nanos());  // an EnumMap: copies even when empty
    }

    private Map<Phase, Long> since(Map<Phase, Long> before) {
        Map<Phase, Long> out = new EnumMap<>(Phase.class);
        question.phases().nanos().forEach((phase, total) -> {
            long spent = total - before.getOrDefault(phase, 0L);
            if (spent > 0) out.put(phase, spent);
        });
        return out;
    }
}
