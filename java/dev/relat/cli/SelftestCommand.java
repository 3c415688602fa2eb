package dev.relat.cli;

import dev.relat.ops.Backend;
import dev.relat.ops.RmsNorm;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/** {@code relat selftest}: the native RMSNorm kernel against libtorch on every available device. */
@Command(name = "selftest", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Runs the native RMSNorm kernel on a random tensor on every available device, compares it with"
                + " libtorch, and prints which kernel library ran.")
final class SelftestCommand implements Callable<Integer> {
    @ParentCommand
    Main parent;

    @Override
    public Integer call() {
        PrintStream out = parent.context.out();
        int failures = selftestOn(out, new Device("cpu"));
        if (Backend.cudaAvailable()) {
            failures += selftestOn(out, new Device("cuda:0"));
        } else {
            out.println("cuda: not available (no GPU seen by libtorch or librelat_cuda not built)");
        }
        out.println(failures == 0 ? "selftest passed" : "selftest FAILED");
        return failures == 0 ? 0 : 1;
    }

    private static int selftestOn(PrintStream out, Device device) {
        long rows = 64, cols = 1000;
        TensorOptions options = new TensorOptions(device);
        Tensor x = torch.randn(new long[] {rows, cols}, options);
        Tensor w = torch.randn(new long[] {cols}, options);
        long start = System.nanoTime();
        Tensor y = RmsNorm.forward(x, w, 1e-6);
        long micros = (System.nanoTime() - start) / 1000;
        Tensor ref = torch.rms_norm(x, new long[] {cols}, new TensorOptional(w),
                new DoubleOptional(1e-6));
        double err = torch.max(torch.abs(y.sub(ref))).item_double() / torch.max(torch.abs(ref)).item_double();
        boolean ok = err < 1e-5;
        out.printf("%s: %s, rmsnorm [%d x %d] fp32 in %d us, max rel error vs libtorch %.2e %s%n",
                device.str().getString(), Backend.describe(device.is_cuda()), rows, cols, micros, err,
                ok ? "ok" : "TOO LARGE");
        return ok ? 0 : 1;
    }
}
