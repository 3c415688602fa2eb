package dev.relat.ops;

import org.bytedeco.pytorch.global.torch.ScalarType;

/** Storage types the kernels accept, with their C ABI tags (relat_dtype). */
public enum DType {
    F32(0, ScalarType.Float),
    BF16(1, ScalarType.BFloat16),
    F16(2, ScalarType.Half);

    final int tag;
    private final ScalarType scalarType;

    DType(int tag, ScalarType scalarType) {
        this.tag = tag;
        this.scalarType = scalarType;
    }

    public ScalarType scalarType() {
        return scalarType;
    }

    /** The DType of a libtorch scalar type, or null if the kernels do not take it. */
    public static DType of(ScalarType type) {
        // Enum values coming back from native code are not the interned constants: compare codes.
        for (DType d : values()) {
            if (d.scalarType.value == type.value) return d;
        }
        return null;
    }
}
