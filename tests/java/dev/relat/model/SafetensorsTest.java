package dev.relat.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.relat.testing.TensorAssert;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** The safetensors reader and writer, on hand-built bytes, round trips and a tensor over 2 GiB. */
class SafetensorsTest {
    /** A file from a header (written as given, unpadded) and raw little-endian data. */
    static Path raw(Path file, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Files.write(file, b.array());
        return file;
    }

    @Test
    void handBuiltBytesLoadAsTheValuesTheyEncode() throws IOException {
        // one U8 byte first so the F32 tensor starts at an odd offset in the file (the unaligned path)
        ByteBuffer data = ByteBuffer.allocate(1 + 24 + 6 + 4).order(ByteOrder.LITTLE_ENDIAN);
        data.put((byte) 7);
        float[] f32 = {1.5f, -2.25f, 3e-8f, 65504f, -0f, 1e30f};
        for (float f : f32) data.putFloat(f);
        float[] bf16 = {1.0f, -3.5f, 0.15625f}; // exactly representable in bf16
        for (float f : bf16) data.putShort((short) (Float.floatToIntBits(f) >>> 16));
        data.putShort((short) 0x3C00).putShort((short) 0xC000); // f16 1.0, -2.0
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[1,25]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[25,31]},"
                + "\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[31,35]}}";
        while ((8 + header.length() + 1) % 4 != 1) header += " "; // JSON allows the trailing spaces
        assertEquals(1, (8 + header.length() + 1) % 4, "a is misaligned on purpose");
        Path file = raw(TinyCheckpoints.freshDir("raw").resolve("x.safetensors"), header, data.array());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertArrayEquals(new long[] {2, 3}, f.entry("a").shape());
            Tensor a = torch.empty(2, 3);
            f.copyInto("a", a);
            assertArrayEquals(f32, floats(a));
            Tensor b = torch.empty(3); // BF16 -> F32 in the copy
            f.copyInto("b", b);
            assertArrayEquals(bf16, floats(b));
            Tensor c = torch.empty(new long[] {2}, new TensorOptions(ScalarType.Half), null);
            f.copyInto("c", c);
            assertArrayEquals(new float[] {1f, -2f}, floats(c.to(ScalarType.Float)));
            Tensor u = torch.empty(new long[] {1}, new TensorOptions(ScalarType.Byte), null);
            f.copyInto("u", u);
            assertEquals(7, u.item_int());
        }
    }

    static float[] floats(Tensor t) {
        Tensor c = t.contiguous().to(ScalarType.Float);
        float[] out = new float[(int) c.numel()];
        new FloatPointer(c.data_ptr()).get(out);
        return out;
    }

    @Test
    void writerRoundTripsEveryWeightDtypeAndOddShapes() {
        long seed = TensorAssert.freshSeed();
        torch.manual_seed(seed);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("f32", torch.randn(3, 7, 5));
        tensors.put("bf16", torch.randn(11).to(ScalarType.BFloat16));
        tensors.put("f16", torch.randn(2, 9).to(ScalarType.Half));
        tensors.put("empty", torch.randn(0, 4));
        tensors.put("scalar", torch.randn(new long[] {}));
        tensors.put("transposed", torch.randn(4, 6).t());
        Path file = TinyCheckpoints.freshDir("rt").resolve("t.safetensors");
        long size = SafetensorsWriter.write(file, tensors, Map.of("k", "v"));
        assertEquals(0, (Files.exists(file) ? 0 : 1));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(tensors.keySet(), f.entries().keySet());
            assertEquals(0, (f.entry("f32").begin()) % 8, "the header is padded to 8 bytes");
            assertEquals(size, f.entry("transposed").end());
            for (var e : tensors.entrySet()) {
                Tensor back = torch.empty(Tensors.shape(e.getValue()),
                        new TensorOptions(e.getValue().scalar_type()), null);
                f.copyInto(e.getKey(), back);
                assertTrue(torch.equal(back, e.getValue()), e.getKey() + " seed " + seed);
            }
        }
    }

    /**
     * A BF16 tensor of 2 GiB + 8 KiB in a sparse file (markers at the start, around the 2 GiB
     * byte boundary and at the end): more than one MappedByteBuffer could hold.
     */
    @Test
    void loadsATensorLargerThan2GiB() throws IOException {
        long numel = (1L << 30) + 4096;
        long bytes = numel * 2;
        String header = "{\"big\":{\"dtype\":\"BF16\",\"shape\":[" + numel + "],\"data_offsets\":[0," + bytes + "]}}";
        while ((8 + header.length()) % 8 != 0) header += " ";
        Path file = TinyCheckpoints.freshDir("big").resolve("big.safetensors");
        long dataStart = 8 + header.length();
        long[] marks = {0, (1L << 30) - 1, 1L << 30, numel - 1};
        float[] values = {1.5f, -2f, 3f, -0.5f};
        try (RandomAccessFile out = new RandomAccessFile(file.toFile(), "rw")) {
            ByteBuffer head = ByteBuffer.allocate((int) dataStart).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(header.length()).put(header.getBytes(StandardCharsets.US_ASCII));
            out.write(head.array());
            out.setLength(dataStart + bytes);
            for (int i = 0; i < marks.length; i++) {
                out.seek(dataStart + marks[i] * 2);
                short bits = (short) (Float.floatToIntBits(values[i]) >>> 16);
                out.write(bits & 0xff);
                out.write((bits >>> 8) & 0xff);
            }
        }
        try (SafetensorsFile f = SafetensorsFile.open(file); PointerScope scope = new PointerScope()) {
            assertEquals(bytes, f.entry("big").byteLength());
            Tensor t = torch.empty(new long[] {numel}, new TensorOptions(ScalarType.BFloat16), null);
            f.copyInto("big", t);
            for (int i = 0; i < marks.length; i++) {
                assertEquals(values[i], t.select(0, marks[i]).item_float(), "element " + marks[i]);
            }
            assertEquals(0f, t.select(0, 12345).item_float());
            assertEquals(values[0] + values[1] + values[2] + values[3], t.sum().item_float(), 1e-6);
        } finally {
            Files.delete(file);
        }
    }
}
