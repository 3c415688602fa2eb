package dev.relat.ops;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Draws one token id per row of logits on the logits' device: greedy, temperature, top-k, top-p,
 * combinable, reproducible. Semantics (native/include/relat/relat.h, "Sampling"):
 * <ul>
 *   <li>tokens are ordered by logit, ties by lowest index; greedy (temperature &lt;= 0) takes the
 *       first;
 *   <li>otherwise s = logit / temperature; top-k keeps the first topK tokens (topK &lt;= 0 or
 *       &gt;= vocab: all); top-p then keeps the shortest prefix of those whose probability mass,
 *       renormalised over them, is &gt;= topP (at least one; topP &gt;= 1: all); one of the kept
 *       tokens is drawn with probability proportional to exp(s - max s);
 *   <li>the random number comes from Philox-4x32-10 on (seed, step, row): no state, and the CPU
 *       and CUDA kernels return the same id for the same logits, seed and step.
 * </ul>
 * The id is written into a caller-provided int64 tensor on the logits' device: nothing crosses to
 * the host.
 *
 * <p>Kernels: native/src/sample.cpp (CPU), kernels/sample.cu (CUDA).
 */
public final class Sampling {
    private static final String OP = "sample";

    private Sampling() {}

    /**
     * Sampling settings; see the class comment for their meaning.
     *
     * @param temperature &lt;= 0 for greedy, else the divisor of the logits
     * @param topK tokens kept by top-k; &lt;= 0 or &gt;= vocab keeps all
     * @param topP probability mass kept by top-p, &gt; 0; &gt;= 1 keeps all
     */
    public record Params(double temperature, long topK, double topP) {
        /**
         * Checks the settings.
         *
         * @param temperature as above; NaN is refused
         * @param topK as above; every value is accepted
         * @param topP as above; must be &gt; 0
         * @throws IllegalArgumentException when temperature is NaN or topP is not &gt; 0
         */
        public Params {
            if (Double.isNaN(temperature)) throw new IllegalArgumentException(OP + ": temperature is NaN");
            if (!(topP > 0)) throw new IllegalArgumentException(OP + ": topP must be > 0 (>= 1 keeps all), got " + topP);
        }

        /** {@return greedy decoding: the highest logit, lowest index on ties} */
        public static Params greedy() {
            return new Params(0, 0, 1);
        }

        static Params temperature(double temperature) {
            return new Params(temperature, 0, 1);
        }

        /** {@return whether these settings take the argmax: temperature &lt;= 0} */
        public boolean isGreedy() {
            return !(temperature > 0);
        }
    }

    /**
     * The workspace of a non-greedy CPU call: one row's share for each thread that will run, at
     * most one per row and per OpenMP thread.
     *
     * @param rows rows of logits
     * @param vocab the vocab dimension of logits
     * @param cuda size it for librelat_cuda (which needs none) rather than librelat_cpu
     * @return bytes; 0 on CUDA
     */
    public static long workspaceBytes(long rows, long vocab, boolean cuda) {
        return Kernels.bytes(OP, cuda,
                (library, bytes) -> library.sampleWorkspaceBytes(rows, vocab, bytes));
    }

    /**
     * A workspace to allocate once and pass to every {@link #sample(Tensor, Params, long, long,
     * Tensor, Tensor) sample} call.
     *
     * @param rows rows of logits
     * @param vocab the vocab dimension of logits
     * @param device the logits' device
     * @return uint8 {@code [workspaceBytes(rows, vocab)]} on the device (empty on CUDA)
     */
    public static Tensor workspace(long rows, long vocab, Device device) {
        long bytes = workspaceBytes(rows, vocab, device.is_cuda());
        return torch.empty(new long[] {bytes}, new TensorOptions(torch.ScalarType.Byte).device(
                new org.bytedeco.pytorch.DeviceOptional(device)), new org.bytedeco.pytorch.MemoryFormatOptional());
    }

    /**
     * Samples one id from logits [vocab] and returns it on the host (allocates the output and the
     * workspace; synchronises with the device to read the id).
     */
    static long sample(Tensor logits, Params params, long seed, long step) {
        Checks.defined(OP, "logits", logits);
        long vocab = logits.size(-1);
        if (logits.dim() != 1) {
            throw new IllegalArgumentException(OP + ": tensor 'logits' has rank " + logits.dim()
                    + "; this overload takes one row [vocab]");
        }
        Tensor out = torch.empty(new long[] {1}, new TensorOptions(torch.ScalarType.Long).device(
                new org.bytedeco.pytorch.DeviceOptional(logits.device())), new org.bytedeco.pytorch.MemoryFormatOptional());
        Tensor ws = params.isGreedy() ? null : workspace(1, vocab, logits.device());
        sample(logits, params, seed, step, out, ws);
        return out.item_long();
    }

    /**
     * Samples one id per row of logits into a caller-owned output. Row r uses the random number of
     * (seed, step, r).
     *
     * @param logits {@code [vocab]} or {@code [rows, vocab]}, floating, vocab at most 2^23; the vocab
     *     dimension contiguous, rows at any stride &gt;= vocab
     * @param params temperature, top-k and top-p
     * @param seed the run's seed
     * @param step a counter the caller advances per draw (e.g. the decode position), so that each
     *     step draws a fresh number
     * @param out written: int64, one element per row, contiguous, on the logits' device
     * @param workspace for a non-greedy CPU call, a contiguous tensor of at least one row's share
     *     ({@code workspaceBytes(1, vocab, false)}); the CPU runs one thread per share it is given,
     *     {@link #workspaceBytes} gives every thread one. Otherwise may be null
     */
    public static void sample(Tensor logits, Params params, long seed, long step, Tensor out, Tensor workspace) {
        Checks.defined(OP, "logits", logits);
        DType dtype = DType.of(logits.scalar_type());
        if (dtype == null) {
            throw new IllegalArgumentException(OP + ": tensor 'logits' has dtype " + logits.scalar_type()
                    + "; expected Float, BFloat16 or Half");
        }
        if (logits.dim() != 1 && logits.dim() != 2) {
            throw new IllegalArgumentException(OP + ": tensor 'logits' has rank " + logits.dim()
                    + "; expected [vocab] or [rows, vocab]");
        }
        long rows = logits.dim() == 2 ? logits.size(0) : 1;
        long vocab = logits.size(-1);
        if (vocab < 1) throw new IllegalArgumentException(OP + ": tensor 'logits' has an empty vocab dimension");
        if (vocab > 1 && logits.stride(-1) != 1 || rows > 1 && logits.stride(0) < vocab) {
            throw new IllegalArgumentException(OP + ": tensor 'logits' must have a contiguous vocab dimension"
                    + " and rows that do not overlap (strides " + java.util.Arrays.toString(Checks.strides(logits))
                    + ")");
        }
        long ld = rows > 1 ? logits.stride(0) : vocab;
        Checks.int64(OP, "out", out);
        if (out.numel() != rows) {
            throw new IllegalArgumentException(OP + ": tensor 'out' has " + out.numel()
                    + " elements; expected one per row (" + rows + ")");
        }
        Checks.sameDevice(OP, new String[] {"logits", "out", "workspace"}, logits, out, workspace);
        long wsBytes = 0;
        if (workspace != null) {
            Checks.contiguous(OP, "workspace", workspace);
            wsBytes = workspace.nbytes();
        }
        boolean cuda = logits.is_cuda();
        if (!cuda && !params.isGreedy()) {
            // One row's share is the minimum (rows then run one at a time); workspaceBytes(rows, ...)
            // gives every thread its own.
            long oneRow = workspaceBytes(1, vocab, false);
            if (workspace == null || wsBytes < oneRow) {
                throw new IllegalArgumentException(OP + ": tensor 'workspace' has " + wsBytes + " bytes; expected"
                        + " at least " + workspaceBytes(rows, vocab, false) + " (Sampling.workspaceBytes)");
            }
        }
        Pointer ws = workspace == null ? null : workspace.data_ptr();
        long wsLength = wsBytes;
        Kernels.launch(OP, logits, (library, stream) -> library.sample(logits.data_ptr(), rows,
                vocab, ld, (float) params.temperature(), params.topK(), (float) params.topP(), seed,
                step, out.data_ptr(), ws, wsLength, dtype.tag, stream));
    }
}
