package dev.relat.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import dev.relat.IoErrors;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint's tokenizer: the Rust Hugging Face tokenizers (ai.djl.huggingface) on
 * tokenizer.json, created with truncation and padding off (djl's default cuts at 512 tokens) and
 * adding no special tokens implicitly (Qwen adds none; the chat template writes them). Added and
 * special tokens come from tokenizer.json's added_tokens and tokenizer_config.json's
 * added_tokens_decoder; special tokens written in the text (such as &lt;|im_start|&gt;) encode
 * to their ids. The chat template comes from tokenizer_config.json.
 *
 * <p>The Rust tokenizer is native memory outside libtorch and outside any PointerScope:
 * {@link #close} frees it, and the tokenizer is unusable afterwards. Encoding and decoding touch no
 * tensors.
 */
public final class QwenTokenizer implements AutoCloseable {
    /** The tokenizer file of a checkout (required). */
    public static final String TOKENIZER_JSON = "tokenizer.json";
    /** The file with the chat template, eos_token and added tokens' flags (optional). */
    public static final String TOKENIZER_CONFIG = "tokenizer_config.json";

    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, Long> addedTokens;
    private final Set<String> specialTokens;
    private final ChatTemplate chatTemplate;
    private final String eosToken;

    private QwenTokenizer(HuggingFaceTokenizer tokenizer, Map<String, Long> addedTokens, Set<String> specialTokens,
            ChatTemplate chatTemplate, String eosToken) {
        this.tokenizer = tokenizer;
        this.addedTokens = addedTokens;
        this.specialTokens = specialTokens;
        this.chatTemplate = chatTemplate;
        this.eosToken = eosToken;
    }

    /**
     * Loads tokenizer.json and (when present) tokenizer_config.json from a checkout directory.
     *
     * @param directory the checkout
     * @return the tokenizer; the caller closes it
     * @throws CheckpointException when tokenizer.json is missing or either file cannot be read
     *     or parsed (a bad chat template included); the message names the file
     */
    public static QwenTokenizer load(Path directory) {
        Path json = directory.resolve(TOKENIZER_JSON);
        if (!Files.isRegularFile(json)) throw new CheckpointException(json + ": missing");
        Map<String, Long> added = new LinkedHashMap<>();
        Set<String> special = new LinkedHashSet<>();
        readAddedTokens(json, added, special);
        ChatTemplate template = null;
        String eos = null;
        Path configPath = directory.resolve(TOKENIZER_CONFIG);
        if (Files.isRegularFile(configPath)) {
            JsonObject config = readObject(configPath);
            JsonElement decoder = config.get("added_tokens_decoder");
            if (decoder != null && decoder.isJsonObject()) {
                for (Map.Entry<String, JsonElement> e : decoder.getAsJsonObject().entrySet()) {
                    if (!e.getValue().isJsonObject()) continue;
                    JsonObject t = e.getValue().getAsJsonObject();
                    String content = ChatTemplate.tokenContent(t);
                    long id;
                    try {
                        id = Long.parseLong(e.getKey());
                    } catch (NumberFormatException ex) {
                        throw new CheckpointException(configPath + ": field 'added_tokens_decoder' has key '"
                                + e.getKey() + "', not a token id");
                    }
                    if (content == null) continue;
                    added.putIfAbsent(content, id);
                    if (t.has("special") && t.get("special").getAsBoolean()) special.add(content);
                }
            }
            eos = ChatTemplate.tokenContent(config.get("eos_token"));
            if (config.has("chat_template")) template = ChatTemplate.fromTokenizerConfigJson(
                    readString(configPath), configPath.toString());
        }
        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(json).optAddSpecialTokens(false)
                    .optTruncation(false).optPadding(false).build();
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(json + ": the tokenizer cannot load it: " + e.getMessage(), e);
        }
        return new QwenTokenizer(tokenizer, Collections.unmodifiableMap(added), Collections.unmodifiableSet(special),
                template, eos);
    }

    /** Streams tokenizer.json for "added_tokens" only (the vocabulary itself is skipped). */
    private static void readAddedTokens(Path json, Map<String, Long> added, Set<String> special) {
        try (Reader r = Files.newBufferedReader(json, StandardCharsets.UTF_8); JsonReader in = new JsonReader(r)) {
            in.beginObject();
            while (in.hasNext()) {
                String key = in.nextName();
                if (!key.equals("added_tokens") || in.peek() != JsonToken.BEGIN_ARRAY) {
                    in.skipValue();
                    continue;
                }
                in.beginArray();
                while (in.hasNext()) {
                    JsonObject t = JsonParser.parseReader(in).getAsJsonObject();
                    if (!t.has("id") || !t.has("content")) {
                        throw new CheckpointException(json + ": an entry of 'added_tokens' lacks id or content: " + t);
                    }
                    JsonElement id = t.get("id"), content = t.get("content"), isSpecial = t.get("special");
                    if (!isNumber(id) || !isString(content)) {
                        throw new CheckpointException(json + ": an entry of 'added_tokens' has id " + id + " and content "
                                + content + "; expected a number and a string");
                    }
                    if (isSpecial != null && !isBoolean(isSpecial)) {
                        throw new CheckpointException(json + ": added token " + id + " has 'special': " + isSpecial
                                + "; expected true or false");
                    }
                    double number = id.getAsDouble();
                    if (!(number >= 0 && number <= Integer.MAX_VALUE && number == Math.floor(number))) {
                        throw new CheckpointException(json + ": added token '" + content.getAsString() + "' has id "
                                + id + "; expected a token id");
                    }
                    added.put(content.getAsString(), (long) number);
                    if (isSpecial != null && isSpecial.getAsBoolean()) special.add(content.getAsString());
                }
                in.endArray();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof CheckpointException c) throw c;
            throw new CheckpointException(json + ": cannot read: "
                    + (e instanceof IOException io ? IoErrors.reason(io) : StrictJson.message(e)), e);
        }
    }

    private static boolean isNumber(JsonElement e) {
        return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber();
    }

    private static boolean isString(JsonElement e) {
        return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString();
    }

    private static boolean isBoolean(JsonElement e) {
        return e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean();
    }

    private static String readString(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CheckpointException(p + ": cannot read: " + IoErrors.reason(e), e);
        }
    }

    private static JsonObject readObject(Path p) {
        return StrictJson.object(readString(p), p.toString());
    }

    /**
     * Token ids of text, exactly as written: no special tokens added, no truncation.
     *
     * @param text any text; special tokens written in it (&lt;|im_start|&gt;) encode to their ids
     * @return the ids, as many as the text needs
     */
    public long[] encode(String text) {
        return tokenizer.encode(text, false, false).getIds();
    }

    /**
     * Text of ids, special tokens included (so encode(decode(ids)) round-trips).
     *
     * @param ids token ids
     * @return the text
     */
    public String decode(long[] ids) {
        return tokenizer.decode(ids, false);
    }

    /**
     * Text of ids, optionally without the special tokens.
     *
     * @param ids token ids
     * @param skipSpecial drops special tokens such as &lt;|im_end|&gt; (what an answer shows)
     * @return the text
     */
    public String decode(long[] ids, boolean skipSpecial) {
        return tokenizer.decode(ids, skipSpecial);
    }

    /**
     * Added tokens (special or not, e.g. &lt;think&gt;) by content.
     *
     * @return content to id, from both files (unmodifiable)
     */
    public Map<String, Long> addedTokens() {
        return addedTokens;
    }

    /**
     * Contents of the tokens marked special.
     *
     * @return the contents (unmodifiable); {@link #decode(long[], boolean)} can drop these
     */
    public Set<String> specialTokens() {
        return specialTokens;
    }

    /**
     * The id of an added token.
     *
     * @param token the token's content, e.g. &lt;|im_end|&gt;
     * @return its id
     * @throws IllegalArgumentException naming a token that is not an added token
     */
    public long tokenId(String token) {
        Long id = addedTokens.get(token);
        if (id == null) throw new IllegalArgumentException("'" + token + "' is not an added token of this tokenizer");
        return id;
    }

    /**
     * The eos_token of tokenizer_config.json.
     *
     * @return its content, or null when the file or the field is absent
     */
    public String eosToken() {
        return eosToken;
    }

    /**
     * The chat template of tokenizer_config.json.
     *
     * @return the template, compiled when the tokenizer was loaded
     * @throws IllegalStateException when the checkout has none
     */
    public ChatTemplate chatTemplate() {
        if (chatTemplate == null) throw new IllegalStateException("this tokenizer has no chat template");
        return chatTemplate;
    }

    /**
     * The token ids of the rendered chat template.
     *
     * @param messages the conversation, in order
     * @param addGenerationPrompt ends with the assistant turn's opening, for the model to continue
     * @param enableThinking Qwen3's enable_thinking; null leaves the template's default (on)
     * @return the ids of the rendered text
     * @throws IllegalStateException when the checkout has no chat template
     * @throws dev.relat.model.template.TemplateException when rendering fails (the template
     *     raised an error or exceeded a budget)
     */
    public long[] encodeChat(List<ChatMessage> messages, boolean addGenerationPrompt, Boolean enableThinking) {
        return encode(chatTemplate().render(messages, addGenerationPrompt, enableThinking));
    }

    /**
     * Ids that end an answer: the config's eos ids, the tokenizer's eos_token, and
     * &lt;|im_end|&gt; / &lt;|endoftext|&gt; when the vocabulary has them.
     *
     * @param config the checkout's config (its eos_token_id)
     * @return the ids, in that order, without repeats
     */
    public Set<Long> stopTokens(QwenConfig config) {
        Set<Long> stops = new LinkedHashSet<>(config.eosTokenIds());
        if (eosToken != null && addedTokens.containsKey(eosToken)) stops.add(addedTokens.get(eosToken));
        for (String t : List.of("<|im_end|>", "<|endoftext|>")) {
            if (addedTokens.containsKey(t)) stops.add(addedTokens.get(t));
        }
        return stops;
    }

    /** Frees the native tokenizer. */
    @Override
    public void close() {
        tokenizer.close();
    }
}
