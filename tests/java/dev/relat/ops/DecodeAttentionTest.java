package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import dev.relat.testing.TensorAssert;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Decode attention against the explicit libtorch reference of AttentionTest (one query over
 * positions 0 .. len-1, fp64). Bounds are the project's: fp32 1e-5, bf16 1e-2, fp16 1e-3 (observed
 * on the CPU twin: fp32 ~1.5e-6 at 32k positions, bf16 ~2.5e-3, the output's own rounding).
 */
class DecodeAttentionTest {
    static Stream<Arguments> cases() {
        // length, hq, hkv, D: cache lengths 1, 1000 and 32768; GQA ratios 1, 4 and 8.
        long[][] shapes = {{1, 4, 4, 128}, {1, 8, 1, 64}, {1000, 16, 2, 128}, {1000, 4, 4, 64},
            {32768, 4, 1, 128}, {32768, 8, 1, 64}, {777, 16, 4, 128}};
        List<Arguments> list = new ArrayList<>();
        for (long[] s : shapes) {
            list.add(Arguments.of(DType.F32, s));
            list.add(Arguments.of(DType.BF16, s));
        }
        list.add(Arguments.of(DType.F16, shapes[2]));
        return list.stream();
    }

    static double bound(DType dtype) {
        return TensorAssert.bound(dtype);
    }

    /** out[b] of the explicit reference for query q[b] over the first len positions. */
    static Tensor reference(Tensor q, Tensor kCache, Tensor vCache, long len, double scale) {
        Tensor qb = q.unsqueeze(0);  // [1, hq, D]: one query, prefix len - 1
        Tensor k = kCache.narrow(0, 0, len), v = vCache.narrow(0, 0, len);
        return AttentionTest.reference(qb, k, v, scale, null).out.select(0, 0);
    }

    @ParameterizedTest(name = "{0} len,hq,hkv,D={1}")
    @MethodSource("cases")
    void matchesLibtorch(DType dtype, long[] shape) {
        long len = shape[0], hq = shape[1], hkv = shape[2], d = shape[3];
        long seed = freshSeed();
        double scale = Attention.defaultScale(d);
        // A cache preallocated beyond the current length.
        Tensor kCache = randn(seed, dtype, len + 50, hkv, d);
        Tensor vCache = randn(seed + 1, dtype, len + 50, hkv, d);
        Tensor q = randn(seed + 2, dtype, 1, hq, d).mul(new Scalar(2.0)).to(dtype.scalarType());
        Tensor expected = reference(q.select(0, 0), kCache, vCache, len, scale);
        for (boolean cuda : AttentionTest.devices()) {
            Tensor out = AttentionTest.on(poisoned(dtype, 1, hq, d), cuda);
            DecodeAttention.forward(AttentionTest.on(q, cuda), AttentionTest.on(kCache, cuda),
                    AttentionTest.on(vCache, cuda), null, len, scale, out, null);
            assertClose(out.cpu().select(0, 0), expected, bound(dtype), "decode " + (cuda ? "cuda " : "cpu ") + dtype
                    + " len=" + len + " hq=" + hq + " hkv=" + hkv + " D=" + d + " seed " + seed);
        }
    }

    @Test
    void batchWithItsOwnLengthsAndAnInterleavedCache() {
        long seed = freshSeed();
        long batch = 3, maxPos = 700, hq = 8, hkv = 2, d = 128;
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            // [batch, S, 2, hkv, D]: K and V interleaved per position; strides over positions and sequences.
            Tensor cache = randn(seed, dtype, batch, maxPos, 2, hkv, d);
            Tensor kCache = cache.select(2, 0), vCache = cache.select(2, 1);
            Tensor q = randn(seed + 1, dtype, batch, hq, d);
            int[] lens = {650, 1, 333};
            Tensor seqLens = torch.tensor(lens);
            assertEquals(torch.ScalarType.Int.value, seqLens.scalar_type().value);
            for (boolean cuda : AttentionTest.devices()) {
                Tensor out = AttentionTest.on(poisoned(dtype, batch, hq, d), cuda);
                long ws = DecodeAttention.workspaceBytes(batch, hq, d, 650, cuda);
                Tensor workspace = AttentionTest.on(poisoned(DType.F32, ws / 4), cuda);
                Tensor cacheOn = AttentionTest.on(cache, cuda);  // move the buffer, keep the strided views
                DecodeAttention.forward(AttentionTest.on(q, cuda), cacheOn.select(2, 0), cacheOn.select(2, 1),
                        AttentionTest.on(seqLens, cuda), 650, 0.09, out, workspace);
                for (int b = 0; b < batch; b++) {
                    Tensor expected = reference(q.select(0, b), kCache.select(0, b), vCache.select(0, b), lens[b], 0.09);
                    assertClose(out.cpu().select(0, b), expected, bound(dtype),
                            "batch " + b + " " + (cuda ? "cuda " : "cpu ") + dtype + " seed " + seed);
                }
            }
        }
    }

    @Test
    void lengthZeroGivesZerosAndLengthsAreClamped() {
        long seed = freshSeed();
        Tensor kCache = randn(seed, DType.F32, 2, 300, 1, 64);
        Tensor vCache = randn(seed + 1, DType.F32, 2, 300, 1, 64);
        Tensor q = randn(seed + 2, DType.F32, 2, 4, 64);
        Tensor out = poisoned(DType.F32, 2, 4, 64);
        DecodeAttention.forward(q, kCache, vCache, torch.tensor(new int[] {0, 1000}), 200, 0.125, out, null);
        assertEquals(0.0, torch.max(torch.abs(out.select(0, 0))).item_double());
        Tensor expected = reference(q.select(0, 1), kCache.select(0, 1), vCache.select(0, 1), 200, 0.125);
        assertClose(out.select(0, 1), expected, 1e-5, "clamped to maxLen, seed " + seed);
        Tensor empty = poisoned(DType.F32, 2, 4, 64);
        DecodeAttention.forward(q, kCache, vCache, null, 0, 0.125, empty, null);
        assertFalse(torch.any(torch.isnan(empty)).item_bool());
        assertEquals(0.0, torch.max(torch.abs(empty)).item_double());
    }

    @Test
    void workspaceFollowsTheSplitPlan() {
        // 64 splits of 512 positions at 32k, (D + 2) floats per (sequence, head, split).
        assertEquals(4L * 2 * 16 * 64 * 130, DecodeAttention.workspaceBytes(2, 16, 128, 32768, false));
        assertEquals(4L * 16 * 1 * 130, DecodeAttention.workspaceBytes(1, 16, 128, 100, false));
        assertEquals(0L, DecodeAttention.workspaceBytes(1, 16, 128, 0, false));
    }

    @Test
    void maxWorkspaceCoversEveryLength() {
        for (boolean cuda : AttentionTest.devices()) {
            long max = DecodeAttention.maxWorkspaceBytes(1, 16, 128, cuda);
            long largest = 0;
            for (long len = 0; len <= 200_000; len += len < 20_000 ? 1 : 97) {
                largest = Math.max(largest, DecodeAttention.workspaceBytes(1, 16, 128, len, cuda));
            }
            assertEquals(largest, max, "the bound is the largest workspace any length needs (cuda " + cuda + ")");
        }
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor q = randn(1, DType.F32, 1, 8, 64);
        Tensor k = randn(2, DType.F32, 100, 2, 64);
        Tensor v = randn(3, DType.F32, 100, 2, 64);
        var e = assertThrows(IllegalArgumentException.class, () -> DecodeAttention.forward(q, k, v, 101, 0.1));
        assertTrue(e.getMessage().contains("length 101 is outside the 100 positions of 'kCache'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DecodeAttention.forward(q, k, randn(3, DType.F32, 100, 1, 64), 10, 0.1));
        assertTrue(e.getMessage().contains("'vCache' (sizes [100, 1, 64]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DecodeAttention.forward(randn(1, DType.F32, 2, 8, 64), k, v, 10, 0.1));
        assertTrue(e.getMessage().contains("'kCache' holds 1 sequences but 'q' has 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DecodeAttention.forward(q, k, v,
                torch.zeros(new long[] {1}, new TensorOptions(torch.ScalarType.Long)), 10, 0.1, torch.empty_like(q), null));
        assertTrue(e.getMessage().contains("'seqLens' has dtype Long"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DecodeAttention.forward(q, k, v, null, 10, 0.1,
                torch.empty_like(q), poisoned(DType.F32, 3)));
        assertTrue(e.getMessage().contains("'workspace' holds 12 bytes"), e.getMessage());
        int status = CpuKernels.INSTANCE.decodeAttentionForward(null, null, null, null, null, 1, 10, 8, 2, 64, 100, 0, 0.1f,
                null, 0, 0, null);
        var ne = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals("decode_attention_forward: cache_seq_stride 100 is smaller than hkv*head_dim = 128", ne.getMessage());
    }
}
