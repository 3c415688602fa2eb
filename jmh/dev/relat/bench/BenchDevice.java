package dev.relat.bench;

import dev.relat.ops.Backend;
import java.util.function.Supplier;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The device a benchmark runs on, from its {@code device} JMH parameter: {@code cpu} (the default),
 * {@code cuda} (device 0) or {@code cuda:N}. Creating one also sets libtorch's intra-op threads (a
 * JVM's libtorch starts with one, which would leave the CPU baselines on one core). On CUDA,
 * {@link #sync()} waits for the device, so a measured method returns only when its kernels are
 * done. CUDA classes are touched only when CUDA is asked for: a CPU machine loads none.
 */
public final class BenchDevice {
    private final Device device;
    private final byte cudaIndex;  // -1: the CPU

    private BenchDevice(Device device, byte cudaIndex) {
        this.device = device;
        this.cudaIndex = cudaIndex;
    }

    /**
     * Parses a device parameter, fails when it asks for CUDA that is not there and sets libtorch's
     * threads ({@link #configureThreads(int)} with 0).
     *
     * @param spec {@code cpu}, {@code cuda} or {@code cuda:N}
     * @return the device
     * @throws IllegalArgumentException for any other spec
     * @throws IllegalStateException when CUDA is asked for and {@link Backend#cudaAvailable()} is false
     */
    public static BenchDevice of(String spec) {
        configureThreads(0);
        int index = cudaIndex(spec);
        if (index < 0) return new BenchDevice(new Device("cpu"), (byte) -1);
        if (!Backend.cudaAvailable()) throw new IllegalStateException(noCuda(spec));
        return new BenchDevice(new Device("cuda:" + index), (byte) index);
    }

    /**
     * The CUDA device index a spec names, or -1 for {@code cpu}.
     *
     * @param spec {@code cpu}, {@code cuda} or {@code cuda:N}
     * @return N (0 for {@code cuda}), or -1
     * @throws IllegalArgumentException for any other spec
     */
    static int cudaIndex(String spec) {
        if (spec.equals("cpu")) return -1;
        if (spec.equals("cuda")) return 0;
        if (spec.matches("cuda:[0-9]{1,2}")) return Integer.parseInt(spec.substring(5));
        throw new IllegalArgumentException("device=" + spec + ": expected cpu, cuda or cuda:N");
    }

    /** The one line printed when CUDA is asked for but missing (relat bench prints the same before JMH). */
    static String noCuda(String spec) {
        return "device=" + spec + ": no CUDA device (libtorch sees none / librelat_cuda not built);"
                + " run on a CUDA build with -Pcuda";
    }

    /**
     * Sets libtorch's intra-op threads as the model does when it loads: {@code threads} if positive,
     * else {@code -Drelat.threads} or {@code RELAT_THREADS} (0 there leaves libtorch alone), else
     * every core.
     *
     * @param threads the thread count, or 0 for the default
     */
    public static void configureThreads(int threads) {
        int n = threads;
        if (n <= 0) {
            String property = System.getProperty("relat.threads");
            String value = property != null ? property : System.getenv("RELAT_THREADS");
            try {
                n = value == null || value.isBlank() ? Runtime.getRuntime().availableProcessors()
                        : Integer.parseInt(value.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("relat.threads / RELAT_THREADS=" + value
                        + ": expected a thread count (0 leaves libtorch's setting alone)", e);
            }
        }
        if (n > 0 && torch.get_num_threads() != n) torch.set_num_threads(n);
    }

    /** {@return whether this is a CUDA device} */
    public boolean isCuda() {
        return cudaIndex >= 0;
    }

    /** {@return the libtorch device} */
    public Device device() {
        return device;
    }

    /**
     * Tensor options on this device.
     *
     * @param dtype the element type
     * @return options with that dtype on this device
     */
    public TensorOptions options(ScalarType dtype) {
        return new TensorOptions(device).dtype(new ScalarTypeOptional(dtype));
    }

    /**
     * A tensor moved onto this device (itself when it is there already).
     *
     * @param t a tensor, e.g. built on the CPU with {@code Tensor.create}
     * @return t on this device, same dtype
     */
    public Tensor put(Tensor t) {
        return t.to(device, t.scalar_type());
    }

    /** Waits until every kernel queued on this CUDA device has finished; nothing on the CPU. */
    public void sync() {
        // torch::cuda::synchronize lives in the torch class the benchmarks load anyway: no CUDA class needed
        if (cudaIndex >= 0) torch.cuda_synchronize(cudaIndex);
    }

    /**
     * Runs a call that writes into preallocated outputs (relat's ops, libtorch's {@code _out}
     * variants) and waits for it. Whatever it allocates on the way (tensor handles, a workspace)
     * is released before returning, so no call leaves memory behind for the next.
     *
     * @param call the measured work
     */
    public void run(Runnable call) {
        try (PointerScope scope = new PointerScope()) {
            call.run();
            sync();
        }
    }

    /**
     * Runs a baseline that returns fresh libtorch tensors, as a PyTorch user writes it, and
     * releases every tensor it made before returning: kept alive, each call's outputs would land
     * on never-touched pages and time page faults rather than the op.
     *
     * @param bh consumes the result (its handle only: reading it back would cost a copy)
     * @param call the measured work
     */
    public void released(Blackhole bh, Supplier<?> call) {
        try (PointerScope scope = new PointerScope()) {
            bh.consume(call.get());
            sync();
        }
    }

    @Override
    public String toString() {
        return isCuda() ? "cuda:" + cudaIndex : "cpu";
    }
}
