package dev.relat.ops;

import java.nio.IntBuffer;
import java.nio.LongBuffer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Embedding gather: out[..., :] = table[ids[...], :] for ids (int64 or int32, any shape) and a
 * table [V, d]. No backward: the base weights are frozen.
 *
 * <p>Bad ids. An id outside [0, V) is an error naming the id and its position, and is never
 * read past:
 * <ul>
 *   <li>Host-resident ids (the usual case: they come from the tokenizer) are checked here before
 *       anything runs, for a CPU table and before the upload for a CUDA table; a bad id throws
 *       {@link IndexOutOfBoundsException}. The CPU kernel checks again before it reads.</li>
 *   <li>Device-resident ids cannot be checked without a device-to-host copy, so the contract is
 *       asynchronous: the caller passes an error flag, a device int64 tensor of one element made by
 *       {@link #errorFlag} (it holds -1 = no error). The kernel zero-fills the row of a bad id and
 *       lowers the flag to the smallest bad position. The flag is sticky: several gathers may share
 *       it. {@link #checkErrorFlag} reads it (one synchronising copy, when the caller chooses, e.g.
 *       once per step) and throws naming the id and its position; {@link #resetErrorFlag} re-arms it.</li>
 * </ul>
 * Kernels: native/src/embedding.cpp (CPU), kernels/embedding.cu (CUDA).
 */
public final class Embedding {
    private static final String OP = "embedding_forward";
    private static final int I32 = 0;
    private static final int I64 = 1;

    private Embedding() {}

    /**
     * Returns table[ids] with shape ids.shape + [d]. ids must be host-resident (checked, then
     * uploaded when the table is on CUDA); device-resident ids need
     * {@link #forward(Tensor, Tensor, Tensor, Tensor)} and an error flag.
     */
    static Tensor forward(Tensor ids, Tensor table) {
        Checks.defined(OP, "ids", ids);
        Checks.defined(OP, "table", table);
        if (ids.is_cuda()) {
            throw new IllegalArgumentException(OP + ": tensor 'ids' is on " + ids.device().str().getString()
                    + "; device-resident ids need an error flag: use forward(ids, table, out, errorFlag)"
                    + " and checkErrorFlag(errorFlag, ids)");
        }
        Tensor out = torch.empty(outShape(ids, table), new TensorOptions(table.device())
                .dtype(new ScalarTypeOptional(table.scalar_type())), new MemoryFormatOptional());
        forward(ids, table, out, null);
        return out;
    }

    /**
     * The gather into a caller-owned output.
     *
     * @param ids int64 or int32, any shape, contiguous; on the host (checked here, and uploaded for
     *     a CUDA table) or on the table's device (then errorFlag is required)
     * @param table {@code [V, d]}, contiguous, V and d &gt; 0
     * @param out written: {@code ids.shape + [d]}, the table's dtype and device
     * @param errorFlag from {@link #errorFlag}, on the table's device; may be null for host ids. A
     *     bad device id zero-fills its row and is reported by {@link #checkErrorFlag}
     * @throws IndexOutOfBoundsException for a host id outside [0, V), before anything is written
     */
    public static void forward(Tensor ids, Tensor table, Tensor out, Tensor errorFlag) {
        Checks.defined(OP, "ids", ids);
        int idType = indexType(ids);
        Checks.contiguous(OP, "ids", ids);
        DType dtype = Checks.floating(OP, "table", table);
        if (table.dim() != 2) {
            throw new IllegalArgumentException(OP + ": tensor 'table' has rank " + table.dim()
                    + "; expected [V, d]");
        }
        long vocab = table.size(0);
        long dim = table.size(1);
        if (vocab == 0 || dim == 0) {
            throw new IllegalArgumentException(OP + ": tensor 'table' is empty [" + vocab + ", " + dim + "]");
        }
        Checks.dtype(OP, "out", out, dtype);
        Checks.shape(OP, "out", out, outShape(ids, table));
        Checks.sameDevice(OP, new String[] {"table", "out", "errorFlag"}, table, out, errorFlag);
        if (errorFlag != null) {
            Checks.contiguous(OP, "errorFlag", errorFlag);
            if (errorFlag.scalar_type().value != torch.ScalarType.Long.value || errorFlag.numel() != 1) {
                throw new IllegalArgumentException(OP + ": tensor 'errorFlag' must be one Long element"
                        + " (made by Embedding.errorFlag), got " + errorFlag.scalar_type() + " with "
                        + errorFlag.numel() + " elements");
            }
        }
        long n = ids.numel();
        Tensor deviceIds = ids;
        if (!ids.is_cuda()) {
            checkHostIds(ids, vocab);
            if (table.is_cuda()) deviceIds = ids.to(table.device(), ids.scalar_type());
        } else {
            Checks.sameDevice(OP, new String[] {"table", "ids"}, table, ids);
            if (errorFlag == null) {
                throw new IllegalArgumentException(OP + ": tensor 'ids' is on the device; pass an error flag"
                        + " (Embedding.errorFlag) so that a bad id can be reported");
            }
        }
        Tensor idsOnDevice = deviceIds;
        Pointer flag = errorFlag == null ? null : errorFlag.data_ptr();
        Kernels.launch(OP, table, (library, stream) -> library.embeddingForward(idsOnDevice.data_ptr(),
                idType, n, table.data_ptr(), vocab, dim, out.data_ptr(), flag, dtype.tag, stream));
    }

    /**
     * A new error flag for gathers from device-resident ids.
     *
     * @param table the table it will guard: the flag lives on its device
     * @return int64 {@code [1]} holding -1 (no error)
     */
    public static Tensor errorFlag(Tensor table) {
        return torch.full(new long[] {1}, new Scalar(-1L), new TensorOptions(table.device())
                .dtype(new ScalarTypeOptional(torch.ScalarType.Long)));
    }

    /**
     * Sets the flag back to -1, asynchronously on its device's current stream.
     *
     * @param errorFlag from {@link #errorFlag}
     */
    public static void resetErrorFlag(Tensor errorFlag) {
        errorFlag.fill_(new Scalar(-1L));
    }

    /**
     * Reads the flag: a copy to the host that waits for the device.
     *
     * @param errorFlag from {@link #errorFlag}, passed to the gathers since it was made or reset
     * @param ids the ids of the gather that recorded the error, to name the bad id in the message
     * @throws IndexOutOfBoundsException naming the first bad id and its position in ids, if a gather
     *     recorded one
     */
    public static void checkErrorFlag(Tensor errorFlag, Tensor ids) {
        long position = errorFlag.item_long();
        if (position == -1) return;
        long id = ids.reshape(-1).get(position).item_long();
        throw new IndexOutOfBoundsException(OP + ": ids[" + position + "] = " + id
                + " is out of range (recorded by the device kernel; the row was zero-filled)");
    }

    /** Throws IndexOutOfBoundsException for the first host-resident id outside [0, vocab). */
    static void checkHostIds(Tensor ids, long vocab) {
        long n = ids.numel();
        if (n == 0) return;
        if (indexType(ids) == I64) {
            LongBuffer b = new LongPointer(ids.data_ptr()).capacity(n).asBuffer();
            for (int i = 0; i < n; i++) {
                long id = b.get(i);
                if (id < 0 || id >= vocab) throw badId(i, id, vocab);
            }
        } else {
            IntBuffer b = new IntPointer(ids.data_ptr()).capacity(n).asBuffer();
            for (int i = 0; i < n; i++) {
                int id = b.get(i);
                if (id < 0 || id >= vocab) throw badId(i, id, vocab);
            }
        }
    }

    private static IndexOutOfBoundsException badId(long position, long id, long vocab) {
        return new IndexOutOfBoundsException(OP + ": ids[" + position + "] = " + id
                + " is out of range [0, " + vocab + ") for tensor 'table'");
    }

    private static int indexType(Tensor ids) {
        int t = ids.scalar_type().value;
        if (t == torch.ScalarType.Long.value) return I64;
        if (t == torch.ScalarType.Int.value) return I32;
        throw new IllegalArgumentException(OP + ": tensor 'ids' has dtype " + ids.scalar_type()
                + "; expected Long or Int");
    }

    private static long[] outShape(Tensor ids, Tensor table) {
        long[] s = Checks.shape(ids);
        long[] out = java.util.Arrays.copyOf(s, s.length + 1);
        out[s.length] = table.dim() == 2 ? table.size(1) : 0;
        return out;
    }
}
