package dev.relat.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.relat.IoErrors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * One .safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and [begin, end) byte range in the data section, then the data.
 *
 * <p>{@link #open} reads and checks only the header (offsets inside the file, no overlaps, known
 * dtypes, shape product times element size equal to the byte range). Tensor data is never read
 * onto the Java heap: the file is memory-mapped by libtorch ({@code at::from_file}, one mapping of
 * the whole file, so tensors over 2 GiB work) and each tensor is copied from the mapping straight
 * into its destination tensor, converting dtype and device in the same copy.
 */
final class SafetensorsFile implements AutoCloseable {
    /** The limit the reference implementation puts on a header (100 MB). */
    static final long MAX_HEADER = 100_000_000L;

    /** A tensor's entry in the header; begin and end are absolute offsets in the file. */
    public record Entry(String name, SafetensorsDType dtype, long[] shape, long begin, long end) {
        public long numel() {
            long n = 1;
            for (long s : shape) n *= s;
            return n;
        }

        public long byteLength() {
            return end - begin;
        }
    }

    private final Path path;
    private final long fileSize;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private Tensor mapping;

    private SafetensorsFile(Path path, long fileSize, Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.fileSize = fileSize;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Reads and validates the header; errors are {@link CheckpointException}s naming the file and the tensor. */
    public static SafetensorsFile open(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw error(path, "truncated: the file has " + size + " bytes, fewer than the 8-byte header length");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lengthBytes, 0);
            long headerLength = lengthBytes.flip().getLong();
            if (Long.compareUnsigned(headerLength, size - 8) > 0) {
                throw error(path, "header length " + Long.toUnsignedString(headerLength)
                        + " is larger than the file (" + size + " bytes; truncated or not a safetensors file?)");
            }
            if (headerLength > MAX_HEADER) {
                throw error(path, "header length " + headerLength + " exceeds the " + MAX_HEADER + "-byte limit");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            readFully(ch, header, 8);
            String json = new String(header.array(), StandardCharsets.UTF_8);
            return parseHeader(path, size, 8 + headerLength, json);
        } catch (IOException e) {
            throw new CheckpointException(path + ": cannot read: " + IoErrors.reason(e), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            int n = ch.read(buffer, position);
            if (n < 0) throw new IOException("unexpected end of file");
            position += n;
        }
    }

    /** The header's JSON of a file of fileSize bytes whose data starts at dataStart (the fuzz tests call it). */
    static SafetensorsFile parseHeader(Path path, long fileSize, long dataStart, String json) {
        JsonElement header = StrictJson.parse(json, path + ": the header");
        if (!header.isJsonObject()) throw error(path, "the header is not a JSON object");
        JsonObject root = header.getAsJsonObject();
        long dataSize = fileSize - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> kv : root.entrySet()) {
            String name = kv.getKey();
            if (name.equals("__metadata__")) {
                if (!kv.getValue().isJsonObject()) throw error(path, "'__metadata__' is not an object");
                for (Map.Entry<String, JsonElement> m : kv.getValue().getAsJsonObject().entrySet()) {
                    if (!m.getValue().isJsonPrimitive() || !m.getValue().getAsJsonPrimitive().isString()) {
                        throw error(path, "'__metadata__' value '" + m.getKey() + "' is not a string");
                    }
                    metadata.put(m.getKey(), m.getValue().getAsString());
                }
                continue;
            }
            if (!kv.getValue().isJsonObject()) throw error(path, "tensor '" + name + "': entry is not an object");
            JsonObject t = kv.getValue().getAsJsonObject();
            JsonElement dtypeField = t.get("dtype");
            if (dtypeField == null || !dtypeField.isJsonPrimitive()) {
                throw error(path, "tensor '" + name + "': 'dtype' is missing");
            }
            SafetensorsDType dtype = SafetensorsDType.byName(dtypeField.getAsString());
            if (dtype == null) {
                throw error(path, "tensor '" + name + "': unknown dtype '" + dtypeField.getAsString() + "'");
            }
            long[] shape = longs(path, name, t.get("shape"), "shape", -1);
            long[] offsets = longs(path, name, t.get("data_offsets"), "data_offsets", 2);
            if (offsets[0] > offsets[1]) {
                throw error(path, "tensor '" + name + "': data_offsets " + Arrays.toString(offsets)
                        + " end before they begin");
            }
            if (offsets[1] > dataSize) {
                throw error(path, "tensor '" + name + "': data_offsets " + Arrays.toString(offsets)
                        + " reach past the end of the file (the data section holds " + dataSize
                        + " bytes; truncated file?)");
            }
            long numel = 1;
            try {
                for (long s : shape) numel = Math.multiplyExact(numel, s);
                long bytes = Math.multiplyExact(numel, dtype.size());
                if (bytes != offsets[1] - offsets[0]) {
                    throw error(path, "tensor '" + name + "': shape " + Arrays.toString(shape) + " of " + dtype
                            + " needs " + bytes + " bytes but data_offsets " + Arrays.toString(offsets) + " hold "
                            + (offsets[1] - offsets[0]));
                }
            } catch (ArithmeticException e) {
                throw error(path, "tensor '" + name + "': shape " + Arrays.toString(shape) + " overflows");
            }
            entries.put(name, new Entry(name, dtype, shape, dataStart + offsets[0], dataStart + offsets[1]));
        }
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1);
            Entry b = sorted.get(i);
            if (b.begin() < a.end() && b.byteLength() > 0 && a.byteLength() > 0) {
                throw error(path, "tensors '" + a.name() + "' [" + (a.begin() - dataStart) + ", "
                        + (a.end() - dataStart) + ") and '" + b.name() + "' [" + (b.begin() - dataStart) + ", "
                        + (b.end() - dataStart) + ") overlap");
            }
        }
        return new SafetensorsFile(path, fileSize, Collections.unmodifiableMap(entries),
                Collections.unmodifiableMap(metadata));
    }

    private static long[] longs(Path path, String tensor, JsonElement e, String field, int expectedLength) {
        if (e == null || !e.isJsonArray()) {
            throw error(path, "tensor '" + tensor + "': '" + field + "' is missing or not a list");
        }
        var array = e.getAsJsonArray();
        if (expectedLength >= 0 && array.size() != expectedLength) {
            throw error(path, "tensor '" + tensor + "': '" + field + "' must have " + expectedLength + " entries, got "
                    + e);
        }
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            JsonElement x = array.get(i);
            if (!x.isJsonPrimitive() || !x.getAsJsonPrimitive().isNumber()) {
                throw error(path, "tensor '" + tensor + "': '" + field + "' must hold non-negative integers, got " + e);
            }
            try {
                java.math.BigDecimal v = x.getAsBigDecimal();
                if (v.signum() < 0 || v.stripTrailingZeros().scale() > 0
                        || v.compareTo(java.math.BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
                    throw new ArithmeticException();
                }
                out[i] = v.longValueExact();
            } catch (ArithmeticException | NumberFormatException bad) {  // also exponents past an int
                throw error(path, "tensor '" + tensor + "': '" + field + "' must hold non-negative integers, got " + e);
            }
        }
        return out;
    }

    static CheckpointException error(Path path, String message) {
        return new CheckpointException(path + ": " + message);
    }

    public Path path() {
        return path;
    }

    /** Every tensor in the header, in header order. */
    public Map<String, Entry> entries() {
        return entries;
    }

    /** The header's string-to-string __metadata__ (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The entry of a tensor; a missing tensor is an error naming the file and the tensor. */
    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw error(path, "tensor '" + name + "' is missing");
        return e;
    }

    /**
     * Copies a tensor's data from the mapped file into destination, which must hold the same
     * number of elements (it may be a view, of any floating dtype, on any device; the copy
     * converts). Temporaries are released before this returns.
     */
    public void copyInto(String name, Tensor destination) {
        Entry e = entry(name);
        if (destination.numel() != e.numel()) {
            throw error(path, "tensor '" + name + "' has " + e.numel() + " elements " + Arrays.toString(e.shape())
                    + " but the destination holds " + destination.numel());
        }
        if (e.numel() == 0) return;
        if (e.dtype().scalarType() == null) {
            throw error(path, "tensor '" + name + "' has dtype " + e.dtype() + ", which libtorch cannot read here");
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor bytes = mapping().narrow(0, e.begin(), e.byteLength());
            if (e.begin() % e.dtype().size() != 0) bytes = bytes.clone(); // unaligned: view() needs alignment
            Tensor source = bytes.view(e.dtype().scalarType()).view(destination.sizes().vec().get());
            destination.copy_(source);
        }
    }

    /** The whole file as a uint8 tensor over a private memory mapping (made on first use). */
    private Tensor mapping() {
        if (mapping == null) {
            try (PointerScope scope = new PointerScope()) {
                Tensor m = torch.from_file(path.toString(), new BoolOptional(false), new LongOptional(fileSize),
                        new TensorOptions(torch.ScalarType.Byte));
                m.retainReference();
                mapping = m;
            }
        }
        return mapping;
    }

    /** Drops the file mapping (tensors already copied out are unaffected). */
    @Override
    public void close() {
        if (mapping != null) {
            mapping.releaseReference();
            mapping = null;
        }
    }
}
