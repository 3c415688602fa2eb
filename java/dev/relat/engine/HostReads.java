package dev.relat.engine;

import java.util.concurrent.atomic.AtomicLong;
import org.bytedeco.pytorch.Tensor;

/**
 * The one place the engine reads a tensor value back to the host: the loss scalar of each
 * update step. Counted, so a test can check that a question with N updates reads exactly N + 1
 * values (a source scan in the tests checks that nothing else in the engine reads back).
 */
final class HostReads {
    private static final AtomicLong LOSS_READS = new AtomicLong();

    private HostReads() {}

    static double loss(Tensor scalar) {
        LOSS_READS.incrementAndGet();
        return scalar.item_double();
    }

    /** Loss scalars read since the JVM started. */
    public static long lossReads() {
        return LOSS_READS.get();
    }
}
