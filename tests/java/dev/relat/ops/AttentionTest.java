package dev.relat.ops;

import static dev.relat.testing.TensorAssert.assertClose;
import static dev.relat.testing.TensorAssert.freshSeed;
import static dev.relat.testing.TensorAssert.poisoned;
import static dev.relat.testing.TensorAssert.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.binding.CpuKernels;
import dev.relat.binding.CudaKernels;
import dev.relat.testing.TensorAssert;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Training attention (causal + prefix, grouped-query heads) against an explicit libtorch
 * composition: matmul, prefix/causal mask, softmax, matmul, with autograd for the gradients. The
 * reference runs in fp64 on the same (rounded) inputs, so the bounds measure the kernel alone.
 *
 * <p>Bounds (relative error max|a - b| / max|b| per tensor) are the project's: fp32 1e-5, bf16
 * 1e-2, fp16 1e-3, for out, lse and every gradient. Observed on the CPU twin: fp32 at most ~2e-6
 * (fp32 sums in another order than the reference, a polynomial exp2 with < 1e-7 relative error);
 * bf16 ~3e-3 (the outputs are rounded to bf16, 2^-9 relative, and the backward uses the rounded
 * out in rowsum(dout * out) as every flash-attention backward does); fp16 ~4e-4.
 */
class AttentionTest {
    static double bound(DType dtype) {
        return TensorAssert.bound(dtype);
    }

    /** tq, prefix P, hq, hkv, D: Tq = 1, prefix 0 and > 0, GQA ratios 1, 4, 8, lengths off the tiles. */
    static final long[][] SHAPES = {
        {1, 0, 4, 4, 64},
        {1, 37, 8, 1, 128},
        {17, 0, 8, 2, 64},
        {50, 77, 16, 16, 128},
        {100, 29, 16, 2, 128},
        {130, 200, 16, 4, 64},
        {65, 0, 2, 2, 128},
        {33, 300, 8, 1, 64},
        {5, 3, 4, 2, 128},  // 10 packed rows: the CPU's small-block path, causal inside it
    };

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        for (long[] s : SHAPES) {
            list.add(Arguments.of(DType.F32, s));
            list.add(Arguments.of(DType.BF16, s));
        }
        list.add(Arguments.of(DType.F16, SHAPES[4]));
        list.add(Arguments.of(DType.F16, SHAPES[1]));
        return list.stream();
    }

    /** The explicit reference in fp64 on the given inputs; gradients when dout is not null. */
    static final class Reference {
        Tensor out, lse, dq, dk, dv;
    }

    static Reference reference(Tensor q, Tensor k, Tensor v, double scale, Tensor dout) {
        long tq = q.size(0), hq = q.size(1), tk = k.size(0), hkv = k.size(1);
        long g = hq / hkv, prefix = tk - tq;
        Tensor qd = q.to(torch.ScalarType.Double).detach().requires_grad_(true);
        Tensor kd = k.to(torch.ScalarType.Double).detach().requires_grad_(true);
        Tensor vd = v.to(torch.ScalarType.Double).detach().requires_grad_(true);
        Tensor qh = qd.permute(1, 0, 2);                                                   // [hq, tq, D]
        Tensor kh = kd.repeat_interleave(g, new LongOptional(1), new LongOptional()).permute(1, 0, 2);
        Tensor vh = vd.repeat_interleave(g, new LongOptional(1), new LongOptional()).permute(1, 0, 2);
        Tensor scores = torch.matmul(qh, kh.transpose(1, 2)).mul(new Scalar(scale));      // [hq, tq, tk]
        Tensor allowed = torch.ones(new long[] {tq, tk}, new TensorOptions(torch.ScalarType.Bool)).tril(prefix);
        scores = scores.masked_fill(allowed.logical_not(), new Scalar(Double.NEGATIVE_INFINITY));
        Tensor attn = torch.softmax(scores, -1);
        Tensor out = torch.matmul(attn, vh).permute(1, 0, 2);                              // [tq, hq, D]
        Reference r = new Reference();
        r.out = out.detach();
        r.lse = scores.logsumexp(new long[] {-1}, false).transpose(0, 1).detach();
        if (dout != null) {
            out.backward(dout.to(torch.ScalarType.Double), new BoolOptional(), false, new TensorArrayRefOptional());
            r.dq = qd.grad();
            r.dk = kd.grad();
            r.dv = vd.grad();
        }
        return r;
    }

    @ParameterizedTest(name = "{0} tq,P,hq,hkv,D={1}")
    @MethodSource("cases")
    void forwardAndBackwardMatchLibtorch(DType dtype, long[] shape) {
        long tq = shape[0], prefix = shape[1], hq = shape[2], hkv = shape[3], d = shape[4], tk = tq + prefix;
        long seed = freshSeed();
        double scale = Attention.defaultScale(d);
        Tensor q = randn(seed, dtype, tq, hq, d);
        Tensor k = randn(seed + 1, dtype, tk, hkv, d);
        Tensor v = randn(seed + 2, dtype, tk, hkv, d);
        Tensor dout = randn(seed + 3, dtype, tq, hq, d);
        Reference ref = reference(q, k, v, scale, dout);
        for (boolean cuda : devices()) {
            String what = "attention " + (cuda ? "cuda " : "cpu ") + dtype + " tq=" + tq + " P=" + prefix
                    + " hq=" + hq + " hkv=" + hkv + " D=" + d + " seed " + seed;
            Tensor out = on(poisoned(dtype, tq, hq, d), cuda);
            Tensor lse = on(poisoned(DType.F32, tq, hq), cuda);
            Attention.forward(on(q, cuda), on(k, cuda), on(v, cuda), scale, out, lse);
            assertClose(out.cpu(), ref.out, bound(dtype), what + " out");
            assertClose(lse.cpu(), ref.lse, 1e-5, what + " lse");

            Tensor dq = on(poisoned(dtype, tq, hq, d), cuda);
            Tensor dk = on(poisoned(dtype, tk, hkv, d), cuda);
            Tensor dv = on(poisoned(dtype, tk, hkv, d), cuda);
            Attention.backward(on(dout, cuda), on(q, cuda), on(k, cuda), on(v, cuda), out, lse, scale, dq, dk,
                    dv, false, null);
            if (tk == 1) {
                // One visible key: the softmax is constant, so dq and dk vanish (up to rounding).
                assertTrue(torch.max(torch.abs(dq)).item_double() <= 1e-5, what + " dq should vanish");
                assertTrue(torch.max(torch.abs(dk)).item_double() <= 1e-5, what + " dk should vanish");
            } else {
                assertClose(dq.cpu(), ref.dq, bound(dtype), what + " dq");
                assertClose(dk.cpu(), ref.dk, bound(dtype), what + " dk");
            }
            assertClose(dv.cpu(), ref.dv, bound(dtype), what + " dv");
        }
    }

    /** CPU always; CUDA too where libtorch sees a GPU and librelat_cuda loads. */
    static boolean[] devices() {
        return Backend.cudaAvailable() ? new boolean[] {false, true} : new boolean[] {false};
    }

    static Tensor on(Tensor t, boolean cuda) {
        return cuda ? t.cuda() : t;
    }

    @Test
    void prefixGradientsAreNotZero() {
        // The ReLAT loss flows back into the prompt prefill: the prefix rows of dk/dv carry gradient.
        long seed = freshSeed();
        Tensor q = randn(seed, DType.F32, 5, 4, 64);
        Tensor k = randn(seed + 1, DType.F32, 25, 2, 64);
        Tensor v = randn(seed + 2, DType.F32, 25, 2, 64);
        Tensor dout = randn(seed + 3, DType.F32, 5, 4, 64);
        var o = Attention.forward(q, k, v, 0.125);
        var g = Attention.backward(dout, q, k, v, o.out(), o.lse(), 0.125);
        Reference ref = reference(q, k, v, 0.125, dout);
        Tensor prefixDk = g.dk().narrow(0, 0, 20), prefixDv = g.dv().narrow(0, 0, 20);
        assertTrue(torch.max(torch.abs(prefixDv)).item_double() > 1e-3, "prefix dv is zero, seed " + seed);
        assertClose(prefixDk, ref.dk.narrow(0, 0, 20), 1e-5, "prefix dk seed " + seed);
        assertClose(prefixDv, ref.dv.narrow(0, 0, 20), 1e-5, "prefix dv seed " + seed);
    }

    @Test
    void readsKvInPlaceFromAStridedCache() {
        // A cache preallocated to 400 positions, K and V interleaved per position: [S, 2, hkv, D].
        long seed = freshSeed();
        long tq = 40, tk = 123, hq = 8, hkv = 2, d = 128;
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Tensor cache = randn(seed, dtype, 400, 2, hkv, d);
            Tensor k = cache.select(1, 0).narrow(0, 0, tk);
            Tensor v = cache.select(1, 1).narrow(0, 0, tk);
            assertEquals(2 * hkv * d, k.stride(0));
            Tensor q = randn(seed + 1, dtype, tq, hq, d);
            Tensor dout = randn(seed + 2, dtype, tq, hq, d);
            Reference ref = reference(q, k, v, 0.1, dout);
            for (boolean cuda : devices()) {
                Tensor cacheOn = on(cache, cuda);  // move the buffer, keep the strided views
                Tensor kOn = cacheOn.select(1, 0).narrow(0, 0, tk), vOn = cacheOn.select(1, 1).narrow(0, 0, tk);
                var o = Attention.forward(on(q, cuda), kOn, vOn, 0.1);
                var g = Attention.backward(on(dout, cuda), on(q, cuda), kOn, vOn, o.out(), o.lse(), 0.1);
                String what = "strided cache " + (cuda ? "cuda " : "cpu ") + dtype + " seed " + seed;
                assertClose(o.out().cpu(), ref.out, bound(dtype), what + " out");
                assertClose(g.dq().cpu(), ref.dq, bound(dtype), what + " dq");
                assertClose(g.dk().cpu(), ref.dk, bound(dtype), what + " dk");
                assertClose(g.dv().cpu(), ref.dv, bound(dtype), what + " dv");
            }
        }
    }

    @Test
    void accumulatesIntoDkDv() {
        long seed = freshSeed();
        Tensor q = randn(seed, DType.F32, 20, 8, 64);
        Tensor k = randn(seed + 1, DType.F32, 90, 1, 64);
        Tensor v = randn(seed + 2, DType.F32, 90, 1, 64);
        Tensor dout = randn(seed + 3, DType.F32, 20, 8, 64);
        Tensor dk0 = randn(seed + 4, DType.F32, 90, 1, 64);
        Tensor dv0 = randn(seed + 5, DType.F32, 90, 1, 64);
        var o = Attention.forward(q, k, v, 0.125);
        Tensor dq = poisoned(DType.F32, 20, 8, 64);
        Tensor dk = dk0.clone(), dv = dv0.clone();
        Attention.backward(dout, q, k, v, o.out(), o.lse(), 0.125, dq, dk, dv, true, null);
        Reference ref = reference(q, k, v, 0.125, dout);
        assertClose(dq, ref.dq, 1e-5, "dq seed " + seed);
        assertClose(dk, ref.dk.add(dk0.to(torch.ScalarType.Double)), 1e-5, "dk0 + dk seed " + seed);
        assertClose(dv, ref.dv.add(dv0.to(torch.ScalarType.Double)), 1e-5, "dv0 + dv seed " + seed);
    }

    @Test
    void acceptsAGivenWorkspaceAndRejectsASmallOne() {
        long seed = freshSeed();
        Tensor q = randn(seed, DType.BF16, 30, 4, 64);
        Tensor k = randn(seed + 1, DType.BF16, 50, 2, 64);
        Tensor v = randn(seed + 2, DType.BF16, 50, 2, 64);
        Tensor dout = randn(seed + 3, DType.BF16, 30, 4, 64);
        var o = Attention.forward(q, k, v, 0.125);
        long bytes = Attention.backwardWorkspaceBytes(q, k, v);
        assertTrue(bytes >= 4 * (30 * 4 + 30 * 4 * 64), "workspace " + bytes);
        Tensor ws = poisoned(DType.F32, bytes / 4);
        Tensor dq = poisoned(DType.BF16, 30, 4, 64), dk = poisoned(DType.BF16, 50, 2, 64), dv = poisoned(DType.BF16, 50, 2, 64);
        Attention.backward(dout, q, k, v, o.out(), o.lse(), 0.125, dq, dk, dv, false, ws);
        Reference ref = reference(q, k, v, 0.125, dout);
        assertClose(dq, ref.dq, 1e-2, "dq seed " + seed);
        assertClose(dk, ref.dk, 1e-2, "dk seed " + seed);
        var e = assertThrows(IllegalArgumentException.class, () -> Attention.backward(dout, q, k, v, o.out(),
                o.lse(), 0.125, dq, dk, dv, false, poisoned(DType.F32, 10)));
        assertTrue(e.getMessage().contains("'workspace' holds 40 bytes"), e.getMessage());
    }

    @Test
    void rejectsBadInputWithTheTensorNamed() {
        Tensor q = randn(1, DType.F32, 4, 8, 64);
        Tensor k = randn(2, DType.F32, 6, 2, 64);
        Tensor v = randn(3, DType.F32, 6, 2, 64);
        var e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, randn(2, DType.F32, 6, 3, 64), v, 0.1));
        assertTrue(e.getMessage().contains("'v' (sizes [6, 2, 64]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, randn(2, DType.F32, 6, 3, 64), randn(2, DType.F32, 6, 3, 64), 0.1));
        assertTrue(e.getMessage().contains("not a multiple"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, k.narrow(0, 0, 3), v.narrow(0, 0, 3), 0.1));
        assertTrue(e.getMessage().contains("fewer than the 4 queries"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, k.to(torch.ScalarType.BFloat16), v, 0.1));
        assertTrue(e.getMessage().contains("'k' has dtype BFloat16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q.transpose(0, 1), k, v, 0.1));
        assertTrue(e.getMessage().contains("'q' must be contiguous"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, k.transpose(1, 2), v.transpose(1, 2), 0.1));
        assertTrue(e.getMessage().contains("'k' must be contiguous in its last two dimensions"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, k, v, Double.NaN));
        assertTrue(e.getMessage().contains("scale must be finite"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.forward(q, k, v, 0.1, poisoned(DType.F32, 4, 8, 64), poisoned(DType.F32, 8, 4)));
        assertTrue(e.getMessage().contains("'lse' has shape [8, 4]"), e.getMessage());
        Tensor q96 = randn(1, DType.F32, 4, 8, 96);
        var ne = assertThrows(NativeKernelException.class, () -> Attention.forward(q96, randn(2, DType.F32, 6, 2, 96), randn(2, DType.F32, 6, 2, 96), 0.1));
        assertEquals("attention_forward: head_dim 96 is not supported (64 or 128)", ne.getMessage());
        var o = Attention.forward(q, k, v, 0.1);
        e = assertThrows(IllegalArgumentException.class, () -> Attention.backward(o.out(), q, k, v, o.out(), o.lse(), 0.1,
                poisoned(DType.F32, 4, 8, 64), poisoned(DType.F32, 6, 2, 64), poisoned(DType.F32, 6, 1, 64), false, null));
        assertTrue(e.getMessage().contains("'dv' has shape [6, 1, 64]"), e.getMessage());
    }

    @Test
    void nativeValidationMessages() {
        int status = CpuKernels.INSTANCE.attentionForward(null, null, null, null, null, 4, 6, 8, 2, 64, 128, 0.1f, 0, null);
        var e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, status));
        assertEquals("attention_forward: q is null", e.getMessage());
        int s2 = CpuKernels.INSTANCE.attentionForward(null, null, null, null, null, 4, 3, 8, 2, 64, 128, 0.1f, 0, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, s2));
        assertEquals("attention_forward: bad lengths tq=4 tk=3 (need 0 <= tq <= tk)", e.getMessage());
        int s3 = CpuKernels.INSTANCE.attentionForward(null, null, null, null, null, 4, 6, 8, 2, 64, 100, 0.1f, 0, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, s3));
        assertEquals("attention_forward: kv_stride 100 is smaller than hkv*head_dim = 128", e.getMessage());
        int s4 = CpuKernels.INSTANCE.attentionBackward(null, null, null, null, null, null, null, null, null, null, 0,
                4, 6, 8, 2, 64, 128, 0.1f, 0, 1, null);
        e = assertThrows(NativeKernelException.class, () -> Kernels.check(CpuKernels.INSTANCE, s4));
        assertEquals("attention_backward: dk is null", e.getMessage());
        // tq = 0 is a no-op that needs no pointers.
        assertEquals(0, CpuKernels.INSTANCE.attentionForward(null, null, null, null, null, 0, 0, 8, 2, 64, 128, 0.1f, 0, null));
    }

    /**
     * Both libraries share validate.h: librelat_cuda must reject the same calls with the same
     * message. Its argument checks run on the host, so this needs the library, not a GPU.
     */
    @Test
    void cudaLibraryRejectsTheSameCallsWithTheSameMessages() {
        try {
            CudaKernels.load();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            Assumptions.abort("librelat_cuda is not in this build: " + e.getMessage());
        }
        long[][] forward = {{4, 6, 8, 2, 64, 128}, {4, 3, 8, 2, 64, 128}, {4, 6, 8, 3, 64, 128},
            {4, 6, 8, 2, 96, 192}, {4, 6, 8, 2, 64, 100}, {4, 6, 8, 2, 64, 132}, {-1, 6, 8, 2, 64, 128}};
        for (long[] a : forward) {
            for (int dtype : new int[] {0, 1, 7}) {
                int cpu = CpuKernels.INSTANCE.attentionForward(null, null, null, null, null, a[0], a[1], a[2], a[3], a[4], a[5], 0.1f, dtype, null);
                String cpuMessage = CpuKernels.INSTANCE.lastError();
                int gpu = CudaKernels.INSTANCE.attentionForward(null, null, null, null, null, a[0], a[1], a[2], a[3], a[4], a[5], 0.1f, dtype, null);
                assertEquals(cpu, gpu, java.util.Arrays.toString(a));
                assertEquals(cpuMessage, CudaKernels.INSTANCE.lastError());
                assertTrue(cpu != 0, cpuMessage);
                cpu = CpuKernels.INSTANCE.attentionBackward(null, null, null, null, null, null, null, null, null, null, 0,
                        a[0], a[1], a[2], a[3], a[4], a[5], 0.1f, 0, dtype, null);
                cpuMessage = CpuKernels.INSTANCE.lastError();
                gpu = CudaKernels.INSTANCE.attentionBackward(null, null, null, null, null, null, null, null, null, null, 0,
                        a[0], a[1], a[2], a[3], a[4], a[5], 0.1f, 0, dtype, null);
                assertEquals(cpu, gpu);
                assertEquals(cpuMessage, CudaKernels.INSTANCE.lastError());
            }
        }
        long[][] decode = {{1, 10, 8, 2, 64, 128, 0}, {1, 10, 8, 2, 64, 100, 0}, {1, 10, 8, 2, 64, 132, 0},
            {1, 10, 8, 2, 64, 128, -8}, {1, -1, 8, 2, 64, 128, 0}, {70000, 10, 8, 2, 64, 128, 0}, {1, 10, 8, 2, 32, 128, 0}};
        for (long[] a : decode) {
            int cpu = CpuKernels.INSTANCE.decodeAttentionForward(null, null, null, null, null, a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                    0.1f, null, 0, 1, null);
            String cpuMessage = CpuKernels.INSTANCE.lastError();
            int gpu = CudaKernels.INSTANCE.decodeAttentionForward(null, null, null, null, null, a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                    0.1f, null, 0, 1, null);
            assertEquals(cpu, gpu, java.util.Arrays.toString(a));
            assertEquals(cpuMessage, CudaKernels.INSTANCE.lastError());
            assertTrue(cpu != 0, cpuMessage);
        }
        // Workspace sizes: decode identical; the CUDA backward asks for the minimum both accept.
        long[] c = new long[1], g = new long[1];
        assertEquals(0, CpuKernels.INSTANCE.decodeAttentionWorkspaceBytes(2, 16, 128, 32768, c));
        assertEquals(0, CudaKernels.INSTANCE.decodeAttentionWorkspaceBytes(2, 16, 128, 32768, g));
        assertEquals(c[0], g[0]);
        assertEquals(0, CudaKernels.INSTANCE.attentionBackwardWorkspaceBytes(256, 456, 16, 8, 128, 1, g));
        assertEquals(4L * (256 * 16 + 256 * 16 * 128), g[0]);
        assertEquals(0, CudaKernels.INSTANCE.attentionBackwardWorkspaceBytes(256, 456, 16, 8, 128, 0, g));
        assertEquals(4L * 256 * 16, g[0]);
    }
}
