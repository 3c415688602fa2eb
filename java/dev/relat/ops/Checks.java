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

    /** Every tensor on the device of the first (null entries after the first are skipped). */
    static void sameDevice(String op, String[] names, Tensor... ts) {
        // Compared by type and index: cheap JNI calls; the device strings only for the message.
        org.bytedeco.pytorch.Device first = ts[0].device();
        int type = first.type().value;
        byte index = first.index();
        for (int i = 1; i < ts.length; i++) {
            if (ts[i] == null) continue;
            org.bytedeco.pytorch.Device d = ts[i].device();
            if (d.type().value != type || d.index() != index) {
                throw new IllegalArgumentException(op + ": tensor '" + names[i] + "' is on " + d.str().getString()
                        + " but '" + names[0] + "' is on " + first.str().getString());
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
}
