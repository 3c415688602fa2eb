package dev.relat.ops;

import java.util.Arrays;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Argument checks for the ops: each failure names the op and the tensor at fault. */
final class Checks {
    private Checks() {}

    static void defined(String op, String name, Tensor t) {
        if (t == null || t.isNull() || !t.defined()) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' is null or undefined");
        }
    }

    /** A floating tensor the kernels take (fp32, bf16, fp16), contiguous. Returns its DType. */
    static DType floating(String op, String name, Tensor t) {
        defined(op, name, t);
        DType d = DType.of(t.scalar_type());
        if (d == null) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has dtype "
                    + t.scalar_type() + "; expected Float, BFloat16 or Half");
        }
        contiguous(op, name, t);
        return d;
    }

    static void dtype(String op, String name, Tensor t, DType expected) {
        defined(op, name, t);
        if (DType.of(t.scalar_type()) != expected) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has dtype "
                    + t.scalar_type() + "; expected " + expected.scalarType());
        }
        contiguous(op, name, t);
    }

    /** A contiguous int64 tensor (token ids, positions). */
    static void int64(String op, String name, Tensor t) {
        defined(op, name, t);
        if (t.scalar_type().value != ScalarType.Long.value) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has dtype "
                    + t.scalar_type() + "; expected Long");
        }
        contiguous(op, name, t);
    }

    static void contiguous(String op, String name, Tensor t) {
        if (!t.is_contiguous()) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' must be contiguous (sizes "
                    + Arrays.toString(shape(t)) + ", strides " + Arrays.toString(strides(t)) + ")");
        }
    }

    static void shape(String op, String name, Tensor t, long... expected) {
        long[] actual = shape(t);
        if (!Arrays.equals(actual, expected)) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has shape "
                    + Arrays.toString(actual) + "; expected " + Arrays.toString(expected));
        }
    }

    static void minRank(String op, String name, Tensor t, int rank) {
        if (t.dim() < rank) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has rank " + t.dim()
                    + "; expected at least " + rank);
        }
    }

    /**
     * Every tensor on the device of the first (null entries are skipped). Cheap on the hot path:
     * is_cpu / is_cuda and, for CUDA, the device index; a device string (~10 us through JavaCPP)
     * is only built for the message or for other device types.
     */
    static void sameDevice(String op, String[] names, Tensor... ts) {
        Tensor first = ts[0];
        boolean cpu = first.is_cpu();
        boolean cuda = !cpu && first.is_cuda();
        int index = cuda ? first.device().index() : -1;
        for (int i = 1; i < ts.length; i++) {
            Tensor t = ts[i];
            if (t == null) continue;
            boolean same;
            if (cpu) {
                same = t.is_cpu();
            } else if (cuda) {
                same = t.is_cuda() && t.device().index() == index;
            } else {
                same = t.device().str().getString().equals(first.device().str().getString());
            }
            if (!same) {
                throw new IllegalArgumentException(op + ": tensor '" + names[i] + "' is on "
                        + t.device().str().getString() + " but '" + names[0] + "' is on "
                        + first.device().str().getString());
            }
        }
    }

    static long[] shape(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) s[i] = t.size(i);
        return s;
    }

    static long[] strides(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) s[i] = t.stride(i);
        return s;
    }

    /** A floating tensor whose last two dimensions are contiguous (rows may be further apart). */
    static DType floatingRows(String op, String name, Tensor t, int rank) {
        defined(op, name, t);
        DType d = DType.of(t.scalar_type());
        if (d == null) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has dtype "
                    + t.scalar_type() + "; expected Float, BFloat16 or Half");
        }
        rank(op, name, t, rank);
        if (t.stride(rank - 1) != 1 || t.stride(rank - 2) != t.size(rank - 1)
                || t.stride(rank - 3) < t.size(rank - 2) * t.size(rank - 1)) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' must be contiguous in its"
                    + " last two dimensions with rows at least that far apart (sizes "
                    + Arrays.toString(shape(t)) + ", strides " + Arrays.toString(strides(t)) + ")");
        }
        return d;
    }

    static void rank(String op, String name, Tensor t, int rank) {
        if (t.dim() != rank) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' has rank " + t.dim()
                    + " (shape " + Arrays.toString(shape(t)) + "); expected " + rank);
        }
    }

    /** Same sizes and strides as the reference tensor (K and V share one layout). */
    static void sameLayout(String op, String name, Tensor t, String refName, Tensor ref) {
        if (!Arrays.equals(shape(t), shape(ref)) || !Arrays.equals(strides(t), strides(ref))) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' (sizes "
                    + Arrays.toString(shape(t)) + ", strides " + Arrays.toString(strides(t))
                    + ") must have the sizes and strides of '" + refName + "' (sizes "
                    + Arrays.toString(shape(ref)) + ", strides " + Arrays.toString(strides(ref)) + ")");
        }
    }

    /** An fp32 contiguous scratch tensor of at least `bytes` bytes. */
    static void workspace(String op, String name, Tensor t, long bytes) {
        dtype(op, name, t, DType.F32);
        if (t.numel() * 4 < bytes) {
            throw new IllegalArgumentException(op + ": tensor '" + name + "' holds " + t.numel() * 4
                    + " bytes; the op needs " + bytes);
        }
    }

    static void finite(String op, String name, double value) {
        if (!Double.isFinite(value)) {
            throw new IllegalArgumentException(op + ": " + name + " must be finite, got " + value);
        }
    }

    /** A positive, finite scalar parameter. */
    static void positive(String op, String name, double v) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(op + ": " + name + " must be positive and finite, got " + v);
        }
    }
}
