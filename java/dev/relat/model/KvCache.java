package dev.relat.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Pre-allocated keys and values of every layer, [capacity, kv heads, head_dim] each, in the model
 * dtype on the model device. Positions [0, length) are valid; a forward appends at length. Keys
 * are stored after RoPE. {@link #truncate} rewinds (the ReLAT loop regenerates its latent steps
 * from the end of the prompt). Made by {@link QwenModel#newCache}; the buffers survive any
 * PointerScope and are freed by {@link #close} (or by the garbage collector).
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys;
    private final Tensor[] values;
    private final int capacity;
    private int length;

    KvCache(QwenConfig config, int capacity, Device device, ScalarType dtype) {
        if (capacity < 1) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        this.capacity = capacity;
        int layers = config.numHiddenLayers();
        keys = new Tensor[layers];
        values = new Tensor[layers];
        var options = Tensors.options(dtype, device);
        for (int i = 0; i < layers; i++) {
            keys[i] = Tensors.keep(Tensors.empty(options, capacity, config.numKeyValueHeads(), config.headDim()));
            values[i] = Tensors.keep(Tensors.empty(options, capacity, config.numKeyValueHeads(), config.headDim()));
        }
    }

    /**
     * The positions the cache can hold.
     *
     * @return the capacity it was made with
     */
    public int capacity() {
        return capacity;
    }

    /**
     * Valid positions: where the next forward appends.
     *
     * @return the positions [0, length) that hold keys and values
     */
    public int length() {
        return length;
    }

    /**
     * Forgets every position from newLength on (the buffers are not cleared, only the length).
     *
     * @param newLength in [0, length()]
     * @throws IllegalArgumentException when newLength is outside [0, length()]
     */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("truncate to " + newLength + " outside [0, " + length + "]");
        }
        length = newLength;
    }

    /** Forgets every position: the next forward starts at position 0. */
    public void clear() {
        length = 0;
    }

    /** The whole key buffer of a layer, [capacity, kv heads, head_dim]. */
    Tensor keyBuffer(int layer) {
        return keys[layer];
    }

    /** The whole value buffer of a layer, [capacity, kv heads, head_dim]. */
    Tensor valueBuffer(int layer) {
        return values[layer];
    }

    /**
     * Keys of a layer, after RoPE.
     *
     * @param layer in [0, num_hidden_layers)
     * @param upTo the positions wanted, [0, upTo); at most capacity()
     * @return a new view [upTo, kv heads, head_dim] of the cache's buffer (closing the view does not
     *     free the buffer; writing it writes the cache)
     */
    public Tensor keys(int layer, int upTo) {
        return keys[layer].narrow(0, 0, upTo);
    }

    /**
     * Values of a layer.
     *
     * @param layer in [0, num_hidden_layers)
     * @param upTo the positions wanted, [0, upTo); at most capacity()
     * @return a new view [upTo, kv heads, head_dim] of the cache's buffer, as for {@link #keys}
     */
    public Tensor values(int layer, int upTo) {
        return values[layer].narrow(0, 0, upTo);
    }

    void requireRoom(int tokens) {
        if (length + tokens > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " positions held, " + tokens
                    + " more requested, capacity " + capacity);
        }
    }

    /** Writes k and v ([t, kv heads, head_dim]) of a layer at positions [at, at + t). */
    void write(int layer, int at, Tensor k, Tensor v) {
        long t = k.size(0);
        keys[layer].narrow(0, at, t).copy_(k);
        values[layer].narrow(0, at, t).copy_(v);
    }

    void advance(int tokens) {
        length += tokens;
    }

    /** Frees the buffers now (else the garbage collector frees them); the cache is unusable after. */
    @Override
    public void close() {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) keys[i].releaseReference();
            if (values[i] != null) values[i].releaseReference();
            keys[i] = values[i] = null;
        }
        length = 0;
    }
}
