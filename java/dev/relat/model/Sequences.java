package dev.relat.model;

import java.util.List;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The sequences of one batched forward: its [T, ...] rows are the sequences' new positions, back to
 * back, sequence b's at rows [offset(b), offset(b) + rows(b)), appended to its own cache at
 * start(b). Nothing crosses between sequences: every row attends only to its own cache and an
 * {@link Adapter} may correct each sequence with its own weights. A single sequence is the
 * batch of one. Made by {@link QwenModel#hidden(List, int[], Tensor, ForwardTrace, Adapter)}; its
 * two device tensors (offsets, positions) live until {@link #close}, which the forward (or the
 * trace that recorded it) calls.
 */
public final class Sequences implements AutoCloseable {
    private final List<KvCache> caches;
    private final int[] rows;
    private final int[] offsets;
    private final int[] starts;
    private Tensor offsetsTensor;
    private Tensor positions;

    Sequences(List<KvCache> caches, int[] rows, Device device) {
        if (caches.isEmpty() || caches.size() != rows.length) {
            throw new IllegalArgumentException("a batched forward needs one row count per cache, got " + caches.size()
                    + " caches and " + rows.length + " row counts");
        }
        this.caches = List.copyOf(caches);
        this.rows = rows.clone();
        this.offsets = new int[rows.length + 1];
        this.starts = new int[rows.length];
        long[] offsetIds = new long[rows.length + 1];
        int total = 0;
        for (int b = 0; b < rows.length; b++) {
            if (rows[b] < 1) throw new IllegalArgumentException("sequence " + b + " has " + rows[b] + " new rows");
            starts[b] = caches.get(b).length();
            offsets[b] = total;
            total = Math.addExact(total, rows[b]);
            offsetIds[b + 1] = total;
        }
        offsets[rows.length] = total;
        long[] position = new long[total];
        for (int b = 0; b < rows.length; b++) {
            for (int i = 0; i < rows[b]; i++) position[offsets[b] + i] = starts[b] + i;
        }
        offsetsTensor = Tensors.keep(onDevice(offsetIds, device));
        positions = Tensors.keep(onDevice(position, device));
    }

    private static Tensor onDevice(long[] values, Device device) {
        Tensor t = Tensor.create(values);
        return device.is_cpu() ? t : t.to(device, ScalarType.Long);
    }

    /**
     * The sequences in the batch.
     *
     * @return B, at least 1
     */
    public int count() {
        return rows.length;
    }

    /**
     * Rows of the whole batch.
     *
     * @return T, the sum of every sequence's rows
     */
    public int totalRows() {
        return offsets[rows.length];
    }

    /**
     * New positions of one sequence.
     *
     * @param b the sequence, in [0, count())
     * @return its rows in this forward, at least 1
     */
    public int rows(int b) {
        return rows[b];
    }

    /**
     * First row of one sequence in the batch's [T, ...] tensors.
     *
     * @param b the sequence, in [0, count()]; count() gives T
     * @return the row
     */
    public int offset(int b) {
        return offsets[b];
    }

    /**
     * Position of one sequence's first new row in its cache (its cache length before the forward).
     *
     * @param b the sequence, in [0, count())
     * @return the position
     */
    public int start(int b) {
        return starts[b];
    }

    /**
     * One sequence's cache.
     *
     * @param b the sequence, in [0, count())
     * @return the cache its rows were appended to
     */
    public KvCache cache(int b) {
        return caches.get(b);
    }

    /**
     * The row offsets as the segmented kernels take them.
     *
     * @return int64 [count() + 1] on the model device: offset(0) .. offset(count()); owned here
     */
    public Tensor offsetsTensor() {
        return offsetsTensor;
    }

    /**
     * Every row's position in its own sequence, as RoPE and its backward take them.
     *
     * @return int64 [T] on the model device; owned here
     */
    public Tensor positions() {
        return positions;
    }

    /** Frees the two device tensors; idempotent. */
    @Override
    public void close() {
        if (offsetsTensor != null) offsetsTensor.releaseReference();
        if (positions != null) positions.releaseReference();
        offsetsTensor = positions = null;
    }
}
