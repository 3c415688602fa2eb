package dev.relat.model;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Writes .safetensors files: tensors in the given order, the header padded with spaces to a
 * multiple of 8 bytes (as the reference writer does), data streamed from each tensor's native
 * memory through the file channel in windows under 2 GiB (no copy on the Java heap). The
 * streaming form produces one tensor at a time, so a checkpoint larger than memory can be written.
 * Public for {@link Spec} only: what {@link CheckpointWriter#write} asks its source for.
 */
public final class SafetensorsWriter {
    private static final long WINDOW = 1L << 30;

    /**
     * A tensor's name, dtype and shape, known before its data.
     *
     * @param name the Hugging Face name, e.g. model.layers.0.mlp.up_proj.weight
     * @param dtype the dtype the tensor must have
     * @param shape the shape the tensor must have
     */
    public record Spec(String name, SafetensorsDType dtype, long[] shape) {
        long byteLength() {
            long n = dtype.size();
            for (long s : shape) n = Math.multiplyExact(n, s);
            return n;
        }
    }

    private SafetensorsWriter() {}

    /** Writes the tensors (on any device) with optional metadata; returns the file size. */
    static long write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        List<Spec> specs = new ArrayList<>();
        tensors.forEach((name, t) -> specs.add(new Spec(name, SafetensorsDType.of(t.scalar_type()), Tensors.shape(t))));
        return write(file, specs, spec -> tensors.get(spec.name()), metadata);
    }

    /**
     * Writes the header for specs, then asks source for each tensor in turn (it must match its
     * spec) and streams its bytes; each tensor is released before the next is asked for.
     */
    static long write(Path file, List<Spec> specs, Function<Spec, Tensor> source, Map<String, String> metadata) {
        JsonObject header = new JsonObject();
        if (metadata != null && !metadata.isEmpty()) {
            JsonObject m = new JsonObject();
            metadata.forEach(m::addProperty);
            header.add("__metadata__", m);
        }
        long offset = 0;
        for (Spec spec : specs) {
            JsonObject entry = new JsonObject();
            entry.addProperty("dtype", spec.dtype().name());
            JsonArray shape = new JsonArray();
            for (long s : spec.shape()) shape.add(s);
            entry.add("shape", shape);
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offsets.add(offset + spec.byteLength());
            entry.add("data_offsets", offsets);
            header.add(spec.name(), entry);
            offset += spec.byteLength();
        }
        byte[] json = new Gson().toJson(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            while (head.hasRemaining()) ch.write(head);
            for (Spec spec : specs) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor t = source.apply(spec);
                    if (SafetensorsDType.of(t.scalar_type()) != spec.dtype()
                            || !Arrays.equals(Tensors.shape(t), spec.shape())) {
                        throw new IllegalArgumentException(file + ": tensor '" + spec.name() + "' is "
                                + t.scalar_type() + " " + Arrays.toString(Tensors.shape(t)) + ", declared "
                                + spec.dtype() + " " + Arrays.toString(spec.shape()));
                    }
                    t = t.contiguous().cpu();
                    long bytes = spec.byteLength();
                    if (bytes == 0) continue;
                    BytePointer data = new BytePointer(t.data_ptr()).capacity(bytes);
                    for (long at = 0; at < bytes; at += WINDOW) {
                        long n = Math.min(WINDOW, bytes - at);
                        ByteBuffer window = data.position(at).limit(at + n).asByteBuffer();
                        while (window.hasRemaining()) ch.write(window);
                    }
                }
            }
            return ch.size();
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot write: " + e.getMessage(), e);
        }
    }
}
