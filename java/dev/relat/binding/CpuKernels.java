package dev.relat.binding;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JNI binding of librelat_cpu, the CPU kernel library (native/). Method names drop the
 * {@code relat_cpu_} prefix so that this class and {@link CudaKernels} read the same.
 * Pointers are passed through as addresses: nothing is copied.
 */
@Platform(include = "relat/relat.h", link = "relat_cpu")
public final class CpuKernels {
    static {
        // libtorch first: it brings the OpenMP runtime (libgomp) that librelat_cpu links against.
        Loader.load(org.bytedeco.pytorch.global.torch.class);
        Loader.load();
    }

    private CpuKernels() {}

    /** Forces the native library to load; throws if it cannot. */
    public static void load() {}

    @Name("relat_cpu_last_error") public static native @Cast("const char*") String lastError();

    @Name("relat_cpu_version") public static native @Cast("const char*") String version();

    @Name("relat_cpu_rmsnorm_forward")
    public static native int rmsnormForward(@Const Pointer x, @Const Pointer weight, Pointer y,
            @Cast("float*") Pointer rstd, long rows, long cols, float eps,
            @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_attention_forward")
    public static native int attentionForward(@Const Pointer q, @Const Pointer k, @Const Pointer v,
            Pointer out, @Cast("float*") Pointer lse, long tq, long tk, long hq, long hkv,
            long headDim, long kvStride, float scale, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_attention_backward_workspace_bytes")
    public static native int attentionBackwardWorkspace(long tq, long tk, long hq, long hkv,
            long headDim, @Cast("relat_dtype") int dtype, @Cast("int64_t*") long[] bytes);

    @Name("relat_cpu_attention_backward")
    public static native int attentionBackward(@Const Pointer dout, @Const Pointer q,
            @Const Pointer k, @Const Pointer v, @Const Pointer out, @Cast("const float*") Pointer lse,
            Pointer dq, Pointer dk, Pointer dv, @Cast("float*") Pointer workspace,
            long workspaceBytes, long tq, long tk, long hq, long hkv, long headDim, long kvStride,
            float scale, int accumulateDkv, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_decode_attention_workspace_bytes")
    public static native int decodeAttentionWorkspace(long batch, long hq, long headDim, long maxLen,
            @Cast("int64_t*") long[] bytes);

    @Name("relat_cpu_decode_attention_forward")
    public static native int decodeAttentionForward(@Const Pointer q, @Const Pointer kCache,
            @Const Pointer vCache, Pointer out, @Cast("const int32_t*") Pointer seqLens, long batch,
            long maxLen, long hq, long hkv, long headDim, long cacheSeqStride,
            long cacheBatchStride, float scale, @Cast("float*") Pointer workspace,
            long workspaceBytes, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    // ---- fused linear cross-entropy (relat.h) ----

    /** {@code relat_cpu_gemm}: 0 auto, 1 builtin, 2 openblas. */
    @Name("relat_cpu_set_gemm") public static native int setGemm(@Cast("relat_cpu_gemm") int gemm);

    @Name("relat_cpu_gemm_in_use") public static native @Cast("int") int gemmInUse();

    @Name("relat_cpu_linear_cross_entropy_workspace_bytes")
    public static native int linearCrossEntropyWorkspace(long tokens, long hidden, long vocab,
            @Cast("relat_dtype") int dtype, @Cast("int64_t*") long[] bytes);

    @Name("relat_cpu_linear_cross_entropy")
    public static native int linearCrossEntropy(@Const Pointer h, @Const Pointer u,
            @Cast("const int64_t*") Pointer targets, long ignoreIndex, @Cast("float*") Pointer loss,
            Pointer dh, long tokens, long hidden, long vocab, Pointer workspace, long workspaceBytes,
            @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    // ---- latent step (relat.h) ----

    @Name("relat_cpu_latent_soft_workspace_bytes")
    public static native int latentSoftWorkspace(long batch, long hidden, long vocab,
            @Cast("relat_dtype") int dtype, @Cast("int64_t*") long[] forwardBytes,
            @Cast("int64_t*") long[] backwardBytes);

    @Name("relat_cpu_latent_soft_forward")
    public static native int latentSoftForward(@Const Pointer h, @Const Pointer u, @Const Pointer emb,
            Pointer e, @Cast("float*") Pointer lse, @Cast("float*") Pointer e32, long batch, long hidden,
            long vocab, float invTau, Pointer workspace, long workspaceBytes,
            @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_latent_soft_backward")
    public static native int latentSoftBackward(@Const Pointer h, @Const Pointer u, @Const Pointer emb,
            @Cast("const float*") Pointer lse, @Cast("const float*") Pointer e32, @Const Pointer de,
            Pointer dh, long batch, long hidden, long vocab, float invTau, Pointer workspace,
            long workspaceBytes, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_row_rescale_forward")
    public static native int rowRescaleForward(@Const Pointer x, Pointer y, long rows, long cols,
            float targetNorm, float minNorm, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_row_rescale_backward")
    public static native int rowRescaleBackward(@Const Pointer x, @Const Pointer dy, Pointer dx, long rows,
            long cols, float targetNorm, float minNorm, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_rmsnorm_backward_workspace_bytes")
    public static native int rmsnormBackwardWorkspaceSize(long rows, long cols,
            @Cast("int64_t*") long[] bytes);

    @Name("relat_cpu_rmsnorm_backward")
    public static native int rmsnormBackward(@Const Pointer dy, @Const Pointer x, @Const Pointer weight,
            @Cast("const float*") Pointer rstd, Pointer dx, @Cast("float*") Pointer dweight,
            Pointer workspace, long workspaceBytes, long rows, long cols,
            @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_add_rmsnorm_forward")
    public static native int addRmsnormForward(@Const Pointer x, @Const Pointer r, Pointer s,
            @Const Pointer weight, Pointer y, @Cast("float*") Pointer rstd, long rows, long cols,
            float eps, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_add_rmsnorm_backward")
    public static native int addRmsnormBackward(@Const Pointer dy, @Const Pointer dsNext,
            @Const Pointer s, @Const Pointer weight, @Cast("const float*") Pointer rstd, Pointer ds,
            @Cast("float*") Pointer dweight, Pointer workspace, long workspaceBytes, long rows,
            long cols, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_swiglu_forward")
    public static native int swigluForward(@Const Pointer gate, @Const Pointer up, long ldIn,
            Pointer out, long rows, long cols, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_swiglu_backward")
    public static native int swigluBackward(@Const Pointer dout, @Const Pointer gate,
            @Const Pointer up, long ldIn, Pointer dgate, Pointer dup, long ldGrad, long rows,
            long cols, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_embedding_forward")
    public static native int embeddingForward(@Const Pointer ids, @Cast("relat_index_dtype") int idDtype,
            long n, @Const Pointer table, long vocab, long dim, Pointer out,
            @Cast("int64_t*") Pointer badPosition, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_rope_forward")
    public static native int ropeForward(@Const Pointer q, @Const Pointer k, Pointer qOut, Pointer kOut,
            @Cast("const int64_t*") Pointer positions, @Cast("const float*") Pointer invFreq, long tokens,
            long qHeads, long kvHeads, long headDim, long ldq, long ldk, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_rope_backward")
    public static native int ropeBackward(@Const Pointer dq, @Const Pointer dk, Pointer dqIn, Pointer dkIn,
            @Cast("const int64_t*") Pointer positions, @Cast("const float*") Pointer invFreq, long tokens,
            long qHeads, long kvHeads, long headDim, long ldq, long ldk, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    /** Host arrays of device (or host) pointers; see relat.h. */
    @Name("relat_cpu_adamw_step")
    public static native int adamwStep(@Cast("void**") PointerPointer<?> params,
            @Cast("void**") PointerPointer<?> grads, @Cast("float**") PointerPointer<?> expAvg,
            @Cast("float**") PointerPointer<?> expAvgSq, @Cast("const int64_t*") LongPointer numels, long count,
            @Cast("relat_dtype") int paramDtype, @Cast("relat_dtype") int gradDtype, double lr, double beta1,
            double beta2, double eps, double weightDecay, long step, @Cast("relat_stream") Pointer stream);

    @Name("relat_cpu_sample_workspace_bytes")
    public static native int sampleWorkspaceBytes(long rows, long vocab, @Cast("int64_t*") LongPointer bytes);

    /** seed and step are unsigned 64-bit on the C side. */
    @Name("relat_cpu_sample")
    public static native int sample(@Const Pointer logits, long rows, long vocab, long ld, float temperature,
            long topK, float topP, @Cast("uint64_t") long seed, @Cast("uint64_t") long step,
            @Cast("int64_t*") Pointer out, Pointer workspace, long workspaceBytes, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    // ---- profiling markers (relat.h; not ops): NVTX ranges and the CUDA profiler API on cuda, no-ops on cpu ----

    /** name must not be null; JavaCPP passes it as a temporary UTF-8 copy, which NVTX copies again. */
    @Name("relat_cpu_profile_range_push") public static native int profileRangePush(@Cast("const char*") String name);

    @Name("relat_cpu_profile_range_pop") public static native int profileRangePop();

    @Name("relat_cpu_profile_start") public static native int profileStart();

    @Name("relat_cpu_profile_stop") public static native int profileStop();
}
