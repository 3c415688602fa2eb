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
 */
public final class QwenTokenizer implements AutoCloseable {
    public static final String TOKENIZER_JSON = "tokenizer.json";
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

    /** Loads tokenizer.json and (when present) tokenizer_config.json from a checkout directory. */
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

    /** Token ids of text, exactly as written: no special tokens added, no truncation. */
    public long[] encode(String text) {
        return tokenizer.encode(text, false, false).getIds();
    }

    /** Text of ids, special tokens included (so encode(decode(ids)) round-trips). */
    public String decode(long[] ids) {
        return tokenizer.decode(ids, false);
    }

    /** Text of ids; skipSpecial drops special tokens such as &lt;|im_end|&gt;. */
    public String decode(long[] ids, boolean skipSpecial) {
        return tokenizer.decode(ids, skipSpecial);
    }

    /** Added tokens (special or not, e.g. &lt;think&gt;) by content. */
    public Map<String, Long> addedTokens() {
        return addedTokens;
    }

    /** Contents of the tokens marked special. */
    public Set<String> specialTokens() {
        return specialTokens;
    }

    /** The id of an added token; an unknown token is an error naming it. */
    public long tokenId(String token) {
        Long id = addedTokens.get(token);
        if (id == null) throw new IllegalArgumentException("'" + token + "' is not an added token of this tokenizer");
        return id;
    }

    /** The eos_token of tokenizer_config.json, or null. */
    public String eosToken() {
        return eosToken;
    }

    /** The chat template of tokenizer_config.json; an error when the checkpoint has none. */
    public ChatTemplate chatTemplate() {
        if (chatTemplate == null) throw new IllegalStateException("this tokenizer has no chat template");
        return chatTemplate;
    }

    /** The token ids of the rendered chat template. */
    public long[] encodeChat(List<ChatMessage> messages, boolean addGenerationPrompt, Boolean enableThinking) {
        return encode(chatTemplate().render(messages, addGenerationPrompt, enableThinking));
    }

    /**
     * Ids that end an answer: the config's eos ids, the tokenizer's eos_token, and
     * &lt;|im_end|&gt; / &lt;|endoftext|&gt; when the vocabulary has them.
     */
    public Set<Long> stopTokens(QwenConfig config) {
        Set<Long> stops = new LinkedHashSet<>(config.eosTokenIds());
        if (eosToken != null && addedTokens.containsKey(eosToken)) stops.add(addedTokens.get(eosToken));
        for (String t : List.of("<|im_end|>", "<|endoftext|>")) {
            if (addedTokens.containsKey(t)) stops.add(addedTokens.get(t));
        }
        return stops;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
