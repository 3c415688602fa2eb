package dev.relat.cli;

import dev.relat.ops.Backend;
import dev.relat.ops.RmsNorm;
import java.util.Arrays;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/** The relat command line. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        String command = args.length == 0 ? "help" : args[0];
        switch (command) {
            case "selftest" -> System.exit(selftest(Arrays.copyOfRange(args, 1, args.length)));
            case "help", "--help", "-h" -> usage();
            default -> {
                System.err.println("relat: unknown command '" + command + "'");
                usage();
                System.exit(2);
            }
        }
    }

    private static void usage() {
        System.out.println("""
                usage: relat <command>
                  selftest   run the native RMSNorm kernel on a random tensor on every available
                             device, compare it with libtorch, and print which kernel library ran""");
    }

    /** Runs RMSNorm through relat and through libtorch on random data; 0 when they agree. */
    static int selftest(String[] args) {
        int failures = 0;
        failures += selftestOn(new Device("cpu"));
        if (Backend.cudaAvailable()) {
            failures += selftestOn(new Device("cuda:0"));
        } else {
            System.out.println("cuda: not available (no GPU seen by libtorch or librelat_cuda not built)");
        }
        System.out.println(failures == 0 ? "selftest passed" : "selftest FAILED");
        return failures == 0 ? 0 : 1;
    }

    private static int selftestOn(Device device) {
        long rows = 64, cols = 1000;
        TensorOptions options = new TensorOptions(device);
        Tensor x = torch.randn(new long[] {rows, cols}, options);
        Tensor w = torch.randn(new long[] {cols}, options);
        long start = System.nanoTime();
        Tensor y = RmsNorm.forward(x, w, 1e-6);
        long micros = (System.nanoTime() - start) / 1000;
        Tensor ref = torch.rms_norm(x, new long[] {cols}, new org.bytedeco.pytorch.TensorOptional(w),
                new org.bytedeco.pytorch.DoubleOptional(1e-6));
        double err = torch.max(torch.abs(y.sub(ref))).item_double() / torch.max(torch.abs(ref)).item_double();
        boolean ok = err < 1e-5;
        System.out.printf("%s: %s, rmsnorm [%d x %d] fp32 in %d us, max rel error vs libtorch %.2e %s%n",
                device.str().getString(), Backend.describe(device.is_cuda()), rows, cols, micros, err,
                ok ? "ok" : "TOO LARGE");
        return ok ? 0 : 1;
    }
}
