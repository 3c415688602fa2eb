package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.assertWithin;
import static dev.relat.testing.TensorAssert.bound;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import java.util.stream.Stream;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * RoPE forward against the Hugging Face formula written with libtorch ops (fp32, from the same
 * rounded inputs), and backward against libtorch autograd through that formula.
 */
class RopeTest {
    private static final Device CPU = new Device("cpu");

    /** {tokens, qHeads, kvHeads, headDim}: single row, odd half widths, no k, Qwen3 shapes. */
    static final long[][] SHAPES = {
        {1, 1, 1, 2}, {1, 16, 8, 128}, {3, 5, 1, 6}, {7, 4, 2, 66}, {17, 3, 3, 130}, {5, 2, 0, 10},
        {64, 16, 8, 128}, {33, 32, 8, 128}, {9, 7, 3, 254}
    };

    static Stream<Arguments> cases() {
        return Stream.of(DType.values()).flatMap(d -> Stream.of(SHAPES).map(s -> Arguments.of(d, s)));
    }

    // ---- the reference: transformers' Qwen3RotaryEmbedding + apply_rotary_pos_emb, in libtorch ops ----

    static Tensor hfInvFreq(double theta, long headDim) {
        Tensor exponent = torch.arange(new Scalar(0), new Scalar(headDim), new Scalar(2),
                new TensorOptions(torch.ScalarType.Long)).to(torch.ScalarType.Float).div(new Scalar(headDim));
        return torch.pow(new Scalar(theta), exponent).reciprocal();
    }

    /** {cos, sin}, each [tokens, headDim] fp32: freqs = inv_freq (x) positions via matmul, as HF does. */
    static Tensor[] hfCosSin(Tensor positions, Tensor invFreq) {
        Tensor freqs = invFreq.unsqueeze(1).matmul(positions.to(torch.ScalarType.Float).unsqueeze(0))
                .transpose(0, 1);
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), 1);
        return new Tensor[] {emb.cos(), emb.sin()};
    }

    static Tensor rotateHalf(Tensor x) {
        long half = x.size(-1) / 2;
        return torch.cat(new TensorVector(x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)), -1);
    }

    static Tensor hfApply(Tensor x, Tensor cos, Tensor sin) {
        Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
        return x.mul(c).add(rotateHalf(x).mul(s));
    }

    static Tensor positions(long seed, long tokens) {
        torch.manual_seed(seed);
        // Unordered, repeated and large positions (the latent steps and reconstruction use their own).
        return torch.randint(40000, new long[] {tokens}, new TensorOptions(torch.ScalarType.Long));
    }

    @Test
    void invFreqIsTheHuggingFaceTable() {
        for (long d : new long[] {2, 64, 128, 130}) {
            Tensor expected = hfInvFreq(1e6, d);
            Tensor actual = Rope.invFreq(1e6, d, CPU);
            assertTrue(torch.equal(actual, expected), "inv_freq D=" + d);
            assertEquals(1.0, actual.select(0, 0).item_double(), 0.0);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void forwardMatchesHuggingFace(DType dtype, long[] shape) {
        long seed = freshSeed();
        long tokens = shape[0], qHeads = shape[1], kvHeads = shape[2], headDim = shape[3];
        double theta = (seed & 1) == 0 ? 1e6 : 1e4;
        Tensor q = randn(seed, dtype, tokens, qHeads, headDim);
        Tensor k = kvHeads > 0 ? randn(seed + 1, dtype, tokens, kvHeads, headDim) : null;
        Tensor pos = positions(seed + 2, tokens);
        Tensor inv = Rope.invFreq(theta, headDim, CPU);

        Tensor qOut = poisoned(dtype, tokens, qHeads, headDim);
        Tensor kOut = k == null ? null : poisoned(dtype, tokens, kvHeads, headDim);
        Rope.forward(q, k, pos, inv, qOut, kOut);

        Tensor[] cs = hfCosSin(pos, hfInvFreq(theta, headDim));
        String what = "rope forward " + dtype + " theta " + theta + " seed " + seed;
        assertClose(qOut, hfApply(q.to(torch.ScalarType.Float), cs[0], cs[1]), bound(dtype), what + " q");
        if (k != null) {
            assertClose(kOut, hfApply(k.to(torch.ScalarType.Float), cs[0], cs[1]), bound(dtype), what + " k");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void backwardMatchesAutograd(DType dtype, long[] shape) {
        long seed = freshSeed();
        long tokens = shape[0], qHeads = shape[1], kvHeads = shape[2], headDim = shape[3];
        Tensor gq = randn(seed, dtype, tokens, qHeads, headDim);
        Tensor gk = kvHeads > 0 ? randn(seed + 1, dtype, tokens, kvHeads, headDim) : null;
        Tensor pos = positions(seed + 2, tokens);
        Tensor inv = Rope.invFreq(1e6, headDim, CPU);

        Tensor dq = poisoned(dtype, tokens, qHeads, headDim);
        Tensor dk = gk == null ? null : poisoned(dtype, tokens, kvHeads, headDim);
        Rope.backward(gq, gk, pos, inv, dq, dk);

        // Autograd through the reference forward, at arbitrary inputs (the map is linear).
        Tensor[] cs = hfCosSin(pos, hfInvFreq(1e6, headDim));
        String what = "rope backward " + dtype + " seed " + seed;
        Tensor xq = randn(seed + 3, DType.F32, tokens, qHeads, headDim).requires_grad_(true);
        hfApply(xq, cs[0], cs[1]).backward(gq.to(torch.ScalarType.Float), new BoolOptional(), false,
                new TensorArrayRefOptional());
        assertClose(dq, xq.grad(), bound(dtype), what + " dq");
        if (gk != null) {
            Tensor xk = randn(seed + 4, DType.F32, tokens, kvHeads, headDim).requires_grad_(true);
            hfApply(xk, cs[0], cs[1]).backward(gk.to(torch.ScalarType.Float), new BoolOptional(), false,
                    new TensorArrayRefOptional());
            assertClose(dk, xk.grad(), bound(dtype), what + " dk");
        }
    }

    @Test
    void backwardUndoesForward() {
        long seed = freshSeed();
        Tensor q = randn(seed, DType.F32, 11, 6, 62);
        Tensor k = randn(seed + 1, DType.F32, 11, 2, 62);
        Tensor pos = positions(seed + 2, 11);
        Tensor inv = Rope.invFreq(1e6, 62, CPU);
        Tensor[] rotated = Rope.forward(q, k, pos, inv);
        Tensor[] back = Rope.backward(rotated[0], rotated[1], pos, inv);
        assertClose(back[0], q, 1e-5, "q round trip seed " + seed);
        assertClose(back[1], k, 1e-5, "k round trip seed " + seed);
    }

    @Test
    void inPlaceOnViewsOfAFusedProjection() {
        long seed = freshSeed();
        long tokens = 9, qHeads = 4, kvHeads = 2, headDim = 34;
        for (DType dtype : DType.values()) {
            // qkv as one [tokens, (qHeads + 2 kvHeads) * headDim] projection: q and k are token-strided views.
            Tensor qkv = randn(seed, dtype, tokens, (qHeads + 2 * kvHeads) * headDim);
            Tensor before = qkv.clone();
            Tensor q = qkv.narrow(1, 0, qHeads * headDim).view(tokens, qHeads, headDim);
            Tensor k = qkv.narrow(1, qHeads * headDim, kvHeads * headDim).view(tokens, kvHeads, headDim);
            Tensor pos = positions(seed + 1, tokens);
            Tensor inv = Rope.invFreq(1e6, headDim, CPU);
            Tensor[] expected = Rope.forward(q.contiguous(), k.contiguous(), pos, inv);
            Rope.forwardInPlace(q, k, pos, inv);
            String what = "in-place " + dtype + " seed " + seed;
            assertClose(q, expected[0], 0, what + " q");
            assertClose(k, expected[1], 0, what + " k");
            Tensor v = qkv.narrow(1, (qHeads + kvHeads) * headDim, kvHeads * headDim);
            assertTrue(torch.equal(v, before.narrow(1, (qHeads + kvHeads) * headDim, kvHeads * headDim)),
                    what + ": v must be untouched");
            Rope.backwardInPlace(q, k, pos, inv);
            assertClose(qkv, before, bound(dtype) * 2, what + " round trip");
        }
    }

    @Test
    void bf16StaysCloseToFp32AndToHuggingFacesBf16Path() {
        long seed = freshSeed();
        long tokens = 64, heads = 16, headDim = 128;
        Tensor q = randn(seed, DType.BF16, tokens, heads, headDim);
        Tensor pos = positions(seed + 1, tokens);
        Tensor[] cs = hfCosSin(pos, hfInvFreq(1e6, headDim));
        Tensor reference = hfApply(q.to(torch.ScalarType.Float), cs[0], cs[1]);
        // Hugging Face in bf16: cos/sin cast to bf16, every product and the sum rounded to bf16.
        Tensor hf = hfApply(q, cs[0].to(torch.ScalarType.BFloat16), cs[1].to(torch.ScalarType.BFloat16));
        Tensor ours = Rope.forward(q, null, pos, Rope.invFreq(1e6, headDim, CPU))[0];
        double errOurs = dev.relat.testing.TensorAssert.relativeError(ours, reference);
        double errHf = dev.relat.testing.TensorAssert.relativeError(hf, reference);
        // ours: worst 3.5e-3 over ten sweep runs; HF's three bf16 roundings: 7.4e-3 (a sanity
        // check of the comparison itself, so the wider bound)
        assertWithin(errOurs, 1e-2, "bf16 RoPE vs fp32, ours");
        assertWithin(errHf, 2e-2, "bf16 RoPE vs fp32, HF");
        // One rounding instead of three: never worse than HF's bf16 arithmetic.
        assertTrue(errOurs <= errHf, "ours " + errOurs + " > HF bf16 " + errHf + " seed " + seed);
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor q = randn(1, DType.F32, 4, 2, 8);
        Tensor k = randn(2, DType.F32, 4, 1, 8);
        Tensor pos = torch.arange(new Scalar(4), new TensorOptions(torch.ScalarType.Long));
        Tensor inv = Rope.invFreq(1e6, 8, CPU);
        var e = assertThrows(IllegalArgumentException.class,
                () -> Rope.forward(q, k, pos.to(torch.ScalarType.Int), inv));
        assertTrue(e.getMessage().contains("'positions' has dtype Int"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Rope.forward(q, k, pos.narrow(0, 0, 3), inv));
        assertTrue(e.getMessage().contains("'positions' has shape [3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Rope.forward(q, k, pos, inv.narrow(0, 0, 3)));
        assertTrue(e.getMessage().contains("'invFreq' has shape [3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Rope.forward(q, k.to(torch.ScalarType.BFloat16), pos, inv));
        assertTrue(e.getMessage().contains("'k' has dtype BFloat16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Rope.forward(q, randn(3, DType.F32, 4, 1, 6), pos, inv));
        assertTrue(e.getMessage().contains("'k' has shape [4, 1, 6]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Rope.forward(randn(1, DType.F32, 4, 2, 7), null, pos, inv));
        assertTrue(e.getMessage().contains("must be even"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Rope.forwardInPlace(q.transpose(0, 1), null, pos, inv));
        assertTrue(e.getMessage().contains("'q' has shape") || e.getMessage().contains("'q' must have"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Rope.forward(q, k, pos, inv, poisoned(DType.F32, 4, 2, 8), null));
        assertTrue(e.getMessage().contains("both be given"), e.getMessage());
    }

    @Test
    void nativeErrorsSurfaceWithTheNativeMessage() {
        int status = CpuKernels.INSTANCE.ropeForward(null, null, null, null, null, null, 2, 1, 0, 5, 5, 0, 0, null);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals("rope_forward: head_dim must be even and in [2, 1024], got 5", e.getMessage());
        int nulls = CpuKernels.INSTANCE.ropeBackward(null, null, null, null, null, null, 2, 1, 0, 4, 4, 0, 0, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, nulls));
        assertEquals("rope_backward: q is null", e.getMessage());
    }
}
