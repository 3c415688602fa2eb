package dev.relat.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Shards by question id: disjoint, covering, and stable when the file grows. */
class ShardTest {
    private static Dataset dataset(int questions) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < questions; i++) {
            sb.append("{\"id\": \"q").append(i).append("\", \"question\": \"what is ").append(i)
                    .append("?\", \"answer\": \"#### ").append(i).append("\"}\n");
        }
        return Dataset.parse(sb.toString().getBytes(StandardCharsets.UTF_8), Dataset.Format.preset("gsm8k"));
    }

    private static List<String> ids(List<Question> questions) {
        return questions.stream().map(Question::id).toList();
    }

    @Test
    void threeShardsAreDisjointCoverTheFileAndStayPutWhenItGrows() {
        List<Question> all = dataset(30).questions();
        Set<String> union = new HashSet<>();
        List<List<String>> shards = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            List<String> ids = ids(new Shard(i, 3).select(all));
            assertTrue(!ids.isEmpty(), "shard " + i + " of 30 questions is not empty");
            for (String id : ids) assertTrue(union.add(id), id + " is in one shard only");
            shards.add(ids);
        }
        assertEquals(new HashSet<>(ids(all)), union);

        List<Question> grown = dataset(31).questions();
        int extra = 0;
        for (int i = 0; i < 3; i++) {
            List<String> ids = new ArrayList<>(ids(new Shard(i, 3).select(grown)));
            if (ids.remove("q30")) extra++;
            assertEquals(shards.get(i), ids, "shard " + i + " keeps its questions when one is appended");
        }
        assertEquals(1, extra);
    }

    @Test
    void membershipIsTheIdsHash() {
        // int.from_bytes(hashlib.sha256(id.encode()).digest()[:8], 'big') % 8, in Python
        assertEquals(7, Shard.of("q0", 8));
        assertEquals(2, Shard.of("q1", 8));
        for (String id : List.of("q0", "q1", "gsm8k/17", "ünïcode")) {
            int shard = Shard.of(id, 8);
            assertTrue(new Shard(shard, 8).contains(id));
            assertEquals(0, Shard.of(id, 1));
        }
    }

    @Test
    void parseChecksTheRange() {
        assertEquals(new Shard(2, 8), Shard.parse("2/8"));
        assertEquals("2/8", new Shard(2, 8).toString());
        for (String bad : List.of("8/8", "-1/8", "0/0", "1", "a/b", "1/2/3", "")) {
            assertThrows(IllegalArgumentException.class, () -> Shard.parse(bad), bad);
        }
    }
}
