package dev.relat.eval;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * Shard {@code index} of {@code count}: the questions whose id hashes to it (the first 8 bytes of
 * the SHA-256 of the id, unsigned, mod count). Membership depends on the id alone, so adding
 * questions to the file never moves the ones already there, and the shards of one file are
 * disjoint and cover it.
 */
public record Shard(int index, int count) {
    public Shard {
        if (count < 1) throw new IllegalArgumentException("the shard count must be at least 1, got " + count);
        if (index < 0 || index >= count) {
            throw new IllegalArgumentException("the shard index must be 0 to " + (count - 1) + ", got " + index);
        }
    }

    /** Parses {@code I/N}, 0 <= I < N. */
    public static Shard parse(String text) {
        String[] parts = text.strip().split("/", -1);
        if (parts.length != 2) throw new IllegalArgumentException("expected I/N (shard I of N, 0 <= I < N), got '" + text + "'");
        int index, count;
        try {
            index = Integer.parseInt(parts[0].strip());
            count = Integer.parseInt(parts[1].strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("expected I/N (shard I of N, 0 <= I < N), got '" + text + "'");
        }
        return new Shard(index, count);
    }

    /** Which of {@code count} shards the question id falls in. */
    public static int of(String id, int count) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(id.getBytes(StandardCharsets.UTF_8));
            return (int) Long.remainderUnsigned(ByteBuffer.wrap(digest, 0, 8).getLong(), count);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }

    public boolean contains(String id) {
        return of(id, count) == index;
    }

    /** The questions of this shard, in their order. */
    public List<Question> select(List<Question> questions) {
        return questions.stream().filter(q -> contains(q.id())).toList();
    }

    @Override
    public String toString() {
        return index + "/" + count;
    }
}
