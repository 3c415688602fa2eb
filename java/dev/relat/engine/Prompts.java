package dev.relat.engine;

import dev.relat.model.ChatMessage;
import dev.relat.model.QwenTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The token sequences of one question, rendered with the checkout's own chat template.
 *
 * <p>The question's tokens are located exactly: the template is rendered around a marker, the text
 * before and after it is tokenized on its own and the question tokens go in between. At the
 * template's boundaries (special tokens, newlines) this equals tokenizing the whole text; it also
 * tells the reconstruction loss and the query-lm loss exactly which positions hold the question.
 *
 * @param prompt system (if any) + user question + generation prompt
 * @param questionStart index of the first question token in prompt
 * @param question the question's tokens q_1..q_n
 * @param reconOpening the template's opening of a user turn (what precedes the latent thought)
 * @param reconClosing the instruction and the assistant opening (between the latent thought and
 *     the question the model must restate)
 */
record Prompts(long[] prompt, int questionStart, long[] question, long[] reconOpening, long[] reconClosing) {
    static final String MARKER = "\u2063RELAT_SLOT\u2063";

    static Prompts of(QwenTokenizer tokenizer, String question, Options options) {
        if (question == null || question.isBlank()) throw new IllegalArgumentException("the question is empty");
        long[] q = tokenizer.encode(question);
        List<ChatMessage> messages = new ArrayList<>();
        if (options.systemPrompt() != null) messages.add(ChatMessage.system(options.systemPrompt()));
        messages.add(ChatMessage.user(MARKER));
        String[] around = split(tokenizer.chatTemplate().render(messages, true, options.thinking()));
        long[] before = tokenizer.encode(around[0]);
        long[] after = tokenizer.encode(around[1]);
        long[] prompt = concat(before, q, after);
        String instruction = options.reconstructionInstruction();
        String user = instruction.isEmpty() ? MARKER : MARKER + "\n" + instruction;
        String[] recon = split(tokenizer.chatTemplate().render(List.of(ChatMessage.user(user)), true,
                options.thinking()));
        return new Prompts(prompt, before.length, q, tokenizer.encode(recon[0]), tokenizer.encode(recon[1]));
    }

    static String[] split(String rendered) {
        int at = rendered.indexOf(MARKER);
        if (at < 0 || rendered.indexOf(MARKER, at + 1) >= 0) {
            throw new IllegalStateException("the chat template does not place the user message once in its output");
        }
        return new String[] {rendered.substring(0, at), rendered.substring(at + MARKER.length())};
    }

    static long[] concat(long[]... parts) {
        int n = 0;
        for (long[] p : parts) n += p.length;
        long[] out = new long[n];
        int at = 0;
        for (long[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** The reconstruction input after the latent thought: closing + q_1..q_{n-1}. */
    long[] reconTail() {
        return concat(reconClosing, Arrays.copyOf(question, question.length - 1));
    }
}
