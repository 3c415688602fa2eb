package dev.relat.ops;

import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Embedding gather against libtorch's embedding, and the bad-id contract. */
class EmbeddingTest {
    static Stream<Arguments> cases() {
        long[][] shapes = {{1, 1, 1}, {1, 50, 7}, {7, 1000, 33}, {33, 97, 129}, {512, 3000, 1024}, {5, 100, 4099}};
        return Stream.of(DType.values()).flatMap(d -> Stream.of(shapes).flatMap(s ->
                Stream.of(torch.ScalarType.Long, torch.ScalarType.Int).map(i -> Arguments.of(d, i, s))));
    }

    private static Tensor ids(long seed, long vocab, long n, torch.ScalarType type) {
        torch.manual_seed(seed);
        return torch.randint(vocab, new long[] {n}, new TensorOptions(type));
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void matchesLibtorch(DType dtype, torch.ScalarType idType, long[] spec) {
        long seed = freshSeed();
        long n = spec[0], vocab = spec[1], dim = spec[2];
        Tensor table = randn(seed, dtype, vocab, dim);
        Tensor ids = ids(seed + 1, vocab, n, idType);
        Tensor out = poisoned(dtype, n, dim);
        Embedding.forward(ids, table, out, null);
        Tensor expected = torch.embedding(table, ids.to(torch.ScalarType.Long));
        assertTrue(torch.equal(out, expected), "gather " + dtype + " " + idType + " seed " + seed);
    }

    @Test
    void keepsTheShapeOfIds() {
        long seed = freshSeed();
        Tensor table = randn(seed, DType.BF16, 11, 6);
        Tensor ids = ids(seed + 1, 11, 12, torch.ScalarType.Long).view(3, 4);
        Tensor out = Embedding.forward(ids, table);
        assertEquals(java.util.List.of(3L, 4L, 6L), java.util.List.of(out.size(0), out.size(1), out.size(2)));
        assertTrue(torch.equal(out, torch.embedding(table, ids)), "seed " + seed);
    }

    @Test
    void badIdIsAnErrorNamingTheIdAndPositionAndNothingIsWritten() {
        Tensor table = randn(1, DType.F32, 10, 8);
        for (long bad : new long[] {10, -1, 1L << 40}) {
            Tensor ids = torch.arange(new Scalar(5), new TensorOptions(torch.ScalarType.Long));
            ids.select(0, 3).fill_(new Scalar(bad));
            Tensor out = poisoned(DType.F32, 5, 8);
            var e = assertThrows(IndexOutOfBoundsException.class, () -> Embedding.forward(ids, table, out, null));
            assertTrue(e.getMessage().contains("ids[3] = " + bad + " is out of range [0, 10)"), e.getMessage());
            assertTrue(torch.all(torch.isnan(out)).item_bool(), "nothing written for a bad id");
        }
        Tensor ids32 = torch.arange(new Scalar(4), new TensorOptions(torch.ScalarType.Int)).add(new Scalar(7));
        var e = assertThrows(IndexOutOfBoundsException.class, () -> Embedding.forward(ids32, table));
        assertTrue(e.getMessage().contains("ids[3] = 10 is out of range"), e.getMessage());
    }

    @Test
    void nativeCpuKernelChecksBeforeReadingAndLowersTheFlag() {
        Tensor table = randn(1, DType.BF16, 10, 8);
        Tensor ids = torch.arange(new Scalar(6), new TensorOptions(torch.ScalarType.Long));  // 5 is fine, ...
        ids = ids.mul(new Scalar(3));                                                      // 12, 15 are not
        Tensor out = poisoned(DType.BF16, 6, 8);
        Tensor flag = Embedding.errorFlag(table);
        int status = CpuKernels.INSTANCE.embeddingForward(ids.data_ptr(), 1, 6, table.data_ptr(), 10, 8, out.data_ptr(),
                flag.data_ptr(), 1, null);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals("embedding_forward: ids[4] = 12 is out of range [0, 10)", e.getMessage());
        assertTrue(torch.all(torch.isnan(out)).item_bool(), "nothing written");
        assertEquals(4, flag.item_long());
        Tensor finalIds = ids;
        var ioe = assertThrows(IndexOutOfBoundsException.class, () -> Embedding.checkErrorFlag(flag, finalIds));
        assertTrue(ioe.getMessage().contains("ids[4] = 12"), ioe.getMessage());

        flag.fill_(new Scalar(2));  // a lower position recorded earlier stays
        CpuKernels.INSTANCE.embeddingForward(ids.data_ptr(), 1, 6, table.data_ptr(), 10, 8, out.data_ptr(),
                flag.data_ptr(), 1, null);
        assertEquals(2, flag.item_long());
        Embedding.resetErrorFlag(flag);
        Embedding.checkErrorFlag(flag, ids);  // -1: no error
        int badType = CpuKernels.INSTANCE.embeddingForward(ids.data_ptr(), 7, 6, table.data_ptr(), 10, 8, out.data_ptr(),
                null, 1, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, badType));
        assertTrue(e.getMessage().contains("unknown index dtype tag 7"), e.getMessage());
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor table = randn(1, DType.F32, 10, 8);
        Tensor ids = torch.arange(new Scalar(3), new TensorOptions(torch.ScalarType.Long));
        var e = assertThrows(IllegalArgumentException.class,
                () -> Embedding.forward(ids.to(torch.ScalarType.Float), table));
        assertTrue(e.getMessage().contains("'ids' has dtype Float"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Embedding.forward(ids, table.view(80)));
        assertTrue(e.getMessage().contains("'table' has rank 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Embedding.forward(ids, table, poisoned(DType.F32, 3, 7), null));
        assertTrue(e.getMessage().contains("'out' has shape [3, 7]; expected [3, 8]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Embedding.forward(ids, table, poisoned(DType.F32, 3, 8),
                poisoned(DType.F32, 1)));
        assertTrue(e.getMessage().contains("'errorFlag' must be one Long element"), e.getMessage());
    }
}
