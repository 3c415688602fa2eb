package dev.relat.ops;

import org.bytedeco.pytorch.global.torch.ScalarType;

/** Storage types the kernels accept, with their C ABI tags (relat_dtype). */
public enum DType {
    /** IEEE fp32: libtorch's Float. */
    F32(0, ScalarType.Float),
    /** bfloat16: libtorch's BFloat16. */
    BF16(1, ScalarType.BFloat16),
    /** IEEE fp16: libtorch's Half. */
    F16(2, ScalarType.Half);

    final int tag;
    private final ScalarType scalarType;

    DType(int tag, ScalarType scalarType) {
        this.tag = tag;
        this.scalarType = scalarType;
    }

    /** {@return libtorch's scalar type for this dtype, for allocating tensors of it} */
    public ScalarType scalarType() {
        return scalarType;
    }

    /**
     * The DType of a libtorch scalar type.
     *
     * @param type a tensor's {@code scalar_type()}; the instance may come from native code
     * @return the matching DType, or null when the kernels do not take that type (e.g. Double)
     */
    public static DType of(ScalarType type) {
        // Enum values coming back from native code are not the interned constants: compare codes.
        for (DType d : values()) {
            if (d.scalarType.value == type.value) return d;
        }
        return null;
    }
}
