package dev.relat.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.relat.binding.CudaKernels;
import org.junit.jupiter.api.Test;

/**
 * relat_cuda_set_device, which {@code Kernels.launch} calls before every CUDA op so that an op on
 * libtorch's default stream runs on its tensors' device in librelat_cuda's own runtime. That the
 * ops switch to their stream's device is tested under the CUDA emulation (launch_plan_sweep runs
 * every op on a stream of device 1 while device 0 is current).
 */
class CudaDeviceTest {
    @Test
    void setDeviceAcceptsVisibleDevicesAndNamesABadOne() {
        try {
            CudaKernels.load();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            assumeTrue(false, "librelat_cuda was not built or does not load here: " + e.getMessage());
        }
        CudaKernels cuda = CudaKernels.INSTANCE;
        int count = cuda.deviceCount();
        for (int bad : new int[] {-1, count}) {
            assertEquals(1, cuda.setDevice(bad), "RELAT_ERR_INVALID_ARGUMENT for device " + bad);
            assertTrue(cuda.lastError().contains("device " + bad + " does not exist (" + count + " visible)"),
                    cuda.lastError());
        }
        for (int device = 0; device < count; device++) assertEquals(0, cuda.setDevice(device), cuda.lastError());
    }
}
