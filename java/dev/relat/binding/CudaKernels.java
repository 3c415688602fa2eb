package dev.relat.binding;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JNI binding of librelat_cuda, the CUDA kernel library (kernels/). It is built only where nvcc
 * was found and loaded only when a tensor lives on a CUDA device; cudart is linked statically, so
 * at run time it needs nothing but the NVIDIA driver. Same methods as {@link CpuKernels}.
 */
@Platform(include = "relat/relat.h", link = "relat_cuda")
public final class CudaKernels {
    static {
        Loader.load();
    }

    private CudaKernels() {}

    /** Forces the native library to load; throws if it cannot. */
    public static void load() {}

    @Name("relat_cuda_last_error") public static native @Cast("const char*") String lastError();

    @Name("relat_cuda_version") public static native @Cast("const char*") String version();

    @Name("relat_cuda_architectures") public static native @Cast("const char*") String architectures();

    @Name("relat_cuda_device_count") public static native int deviceCount();

    @Name("relat_cuda_rmsnorm_forward")
    public static native int rmsnormForward(@Const Pointer x, @Const Pointer weight, Pointer y,
            @Cast("float*") Pointer rstd, long rows, long cols, float eps,
            @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cuda_rmsnorm_backward_workspace_size")
    public static native int rmsnormBackwardWorkspaceSize(long rows, long cols,
            @Cast("int64_t*") long[] bytes);

    @Name("relat_cuda_rmsnorm_backward")
    public static native int rmsnormBackward(@Const Pointer dy, @Const Pointer x, @Const Pointer weight,
            @Cast("const float*") Pointer rstd, Pointer dx, @Cast("float*") Pointer dweight,
            Pointer workspace, long workspaceBytes, long rows, long cols,
            @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cuda_add_rmsnorm_forward")
    public static native int addRmsnormForward(@Const Pointer x, @Const Pointer r, Pointer s,
            @Const Pointer weight, Pointer y, @Cast("float*") Pointer rstd, long rows, long cols,
            float eps, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cuda_add_rmsnorm_backward")
    public static native int addRmsnormBackward(@Const Pointer dy, @Const Pointer dsNext,
            @Const Pointer s, @Const Pointer weight, @Cast("const float*") Pointer rstd, Pointer ds,
            @Cast("float*") Pointer dweight, Pointer workspace, long workspaceBytes, long rows,
            long cols, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cuda_swiglu_forward")
    public static native int swigluForward(@Const Pointer gate, @Const Pointer up, long ldIn,
            Pointer out, long rows, long cols, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);

    @Name("relat_cuda_swiglu_backward")
    public static native int swigluBackward(@Const Pointer dout, @Const Pointer gate,
            @Const Pointer up, long ldIn, Pointer dgate, Pointer dup, long ldGrad, long rows,
            long cols, @Cast("relat_dtype") int dtype, @Cast("relat_stream") Pointer stream);

    @Name("relat_cuda_embedding_forward")
    public static native int embeddingForward(@Const Pointer ids, @Cast("relat_index_dtype") int idDtype,
            long n, @Const Pointer table, long vocab, long dim, Pointer out,
            @Cast("int64_t*") Pointer badPosition, @Cast("relat_dtype") int dtype,
            @Cast("relat_stream") Pointer stream);
}
