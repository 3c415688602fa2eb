package dev.relat.model;

import org.bytedeco.pytorch.global.torch.ScalarType;

/** The dtype names of the safetensors format, their element sizes and libtorch types. */
public enum SafetensorsDType {
    BOOL(1, ScalarType.Bool),
    U8(1, ScalarType.Byte),
    I8(1, ScalarType.Char),
    F8_E5M2(1, null),
    F8_E4M3(1, null),
    I16(2, ScalarType.Short),
    U16(2, null),
    F16(2, ScalarType.Half),
    BF16(2, ScalarType.BFloat16),
    I32(4, ScalarType.Int),
    U32(4, null),
    F32(4, ScalarType.Float),
    F64(8, ScalarType.Double),
    I64(8, ScalarType.Long),
    U64(8, null);

    private final int size;
    private final ScalarType scalarType;

    SafetensorsDType(int size, ScalarType scalarType) {
        this.size = size;
        this.scalarType = scalarType;
    }

    /** Bytes per element. */
    int size() {
        return size;
    }

    /** The libtorch type, or null where libtorch has none here. */
    ScalarType scalarType() {
        return scalarType;
    }

    /** A floating type model weights may use: F32, BF16 or F16. */
    boolean isWeightType() {
        return this == F32 || this == BF16 || this == F16;
    }

    /** The dtype of a name in a header, or null when the name is not a safetensors dtype. */
    static SafetensorsDType byName(String name) {
        for (SafetensorsDType d : values()) if (d.name().equals(name)) return d;
        return null;
    }

    /** The safetensors dtype of a libtorch type. */
    static SafetensorsDType of(ScalarType type) {
        for (SafetensorsDType d : values()) {
            if (d.scalarType != null && d.scalarType.value == type.value) return d;
        }
        throw new IllegalArgumentException("no safetensors dtype for " + type);
    }
}
