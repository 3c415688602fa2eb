package dev.relat.testing;

import dev.relat.ops.DType;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.global.torch;

/** libtorch autograd helpers for the reference side of the kernel tests (all in fp32). */
public final class Autograd {
    private Autograd() {}

    /** A fresh fp32 leaf that requires grad, holding the (already rounded) values of t. */
    public static Tensor leaf(Tensor t) {
        return t.to(torch.ScalarType.Float).detach().clone().requires_grad_(true);
    }

    /** Back-propagates {@code grad} (converted to fp32) from {@code y}. */
    public static void backward(Tensor y, Tensor grad) {
        y.backward(grad.to(torch.ScalarType.Float), new BoolOptional(), false, new TensorArrayRefOptional());
    }

    /**
     * t rounded to the storage type, with an identity gradient (straight-through): the reference
     * sees the same rounded values as the kernel while autograd still flows through the rounding.
     */
    public static Tensor roundedTo(Tensor t, DType dtype) {
        Tensor rounded = t.detach().to(dtype.scalarType()).to(torch.ScalarType.Float);
        return t.add(rounded.sub(t.detach()));
    }
}
