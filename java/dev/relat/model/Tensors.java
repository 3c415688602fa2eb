package dev.relat.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Small tensor helpers for the model package. */
final class Tensors {
    private Tensors() {}

    /**
     * Marks a long-lived tensor (a weight, a cache buffer, a trace entry) so that closing an
     * enclosing PointerScope does not free it; the garbage collector frees it once unreachable.
     */
    static Tensor keep(Tensor t) {
        if (t != null) t.retainReference();
        return t;
    }

    /** Options for a dtype on a device. */
    static TensorOptions options(ScalarType dtype, Device device) {
        return new TensorOptions(device).dtype(new ScalarTypeOptional(dtype));
    }

    static Tensor empty(TensorOptions options, long... shape) {
        return torch.empty(shape, options, new MemoryFormatOptional());
    }

    static long[] shape(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) s[i] = t.size(i);
        return s;
    }
}
