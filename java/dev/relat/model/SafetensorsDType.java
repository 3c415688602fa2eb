package dev.relat.model;

import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The dtype names of the safetensors format, their element sizes and libtorch types. Model
 * weights may be F32, BF16 or F16; a header may name any of these, and the types without a
 * libtorch counterpart here cannot be read.
 */
public enum SafetensorsDType {
    /** Boolean, 1 byte (libtorch Bool). */
    BOOL(1, ScalarType.Bool),
    /** Unsigned 8-bit integer (libtorch Byte). */
    U8(1, ScalarType.Byte),
    /** Signed 8-bit integer (libtorch Char). */
    I8(1, ScalarType.Char),
    /** 8-bit float, 5 exponent bits; no libtorch type here. */
    F8_E5M2(1, null),
    /** 8-bit float, 4 exponent bits; no libtorch type here. */
    F8_E4M3(1, null),
    /** Signed 16-bit integer (libtorch Short). */
    I16(2, ScalarType.Short),
    /** Unsigned 16-bit integer; no libtorch type here. */
    U16(2, null),
    /** IEEE half precision (libtorch Half): a weight type. */
    F16(2, ScalarType.Half),
    /** bfloat16 (libtorch BFloat16): a weight type. */
    BF16(2, ScalarType.BFloat16),
    /** Signed 32-bit integer (libtorch Int). */
    I32(4, ScalarType.Int),
    /** Unsigned 32-bit integer; no libtorch type here. */
    U32(4, null),
    /** IEEE single precision (libtorch Float): a weight type. */
    F32(4, ScalarType.Float),
    /** IEEE double precision (libtorch Double). */
    F64(8, ScalarType.Double),
    /** Signed 64-bit integer (libtorch Long). */
    I64(8, ScalarType.Long),
    /** Unsigned 64-bit integer; no libtorch type here. */
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
