package dev.relat.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Peak memory of one question. On CUDA: the caching allocator's peak allocated bytes on the
 * device (its peak is reset at the start of the question). On the CPU: the process's peak
 * resident set (VmHWM), reset at the start of the question through /proc/self/clear_refs; it
 * includes the weights and the JVM, so it is an upper bound of what the question needed.
 */
final class DeviceMemory {
    private DeviceMemory() {}

    static void reset(Device device) {
        if (device.is_cuda()) {
            torch_cuda.getAllocator().resetPeakStats(device.index());
        } else {
            try {
                Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            } catch (IOException | RuntimeException e) {
                // not Linux, or not permitted: the peak then covers the whole process lifetime
            }
        }
    }

    static long peak(Device device) {
        if (device.is_cuda()) {
            return torch_cuda.getAllocator().getDeviceStats(device.index()).allocated_bytes().peak();
        }
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // unknown
        }
        return -1;
    }

    /** Waits for the device's queued work, so a phase's wall time covers its kernels. */
    static void synchronize(Device device) {
        if (device.is_cuda()) torch.synchronizeDevice(device.index());
    }
}
