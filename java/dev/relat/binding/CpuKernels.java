package dev.relat.binding;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
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

    @Name("relat_cpu_rmsnorm_backward_workspace_size")
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
}
