package dev.relat.bench;

import dev.relat.ops.Attention;
import dev.relat.ops.DType;
import dev.relat.ops.LatentStep;
import dev.relat.ops.LinearCrossEntropy;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Peak extra memory of relat's fused CPU ops against their libtorch compositions, measured, not
 * computed: each path runs once in a fresh JVM (a child process). The child builds the inputs,
 * warms the path up on a tiny shape (code pages, OpenMP threads, libtorch's lazy init), runs
 * {@code System.gc()}, reads its anonymous resident memory (RssAnon in /proc/self/status) as the
 * baseline, runs the path once at the full shape while a thread polls RssAnon every millisecond.
 * Peak extra = polled maximum - baseline: every anonymous byte the call makes resident, the
 * outputs it allocates (dL/dh, gradients) included for both sides, whatever allocated it
 * (libtorch's allocator, the JVM, glibc). Not VmHWM after {@code clear_refs}: it also counts
 * file-backed pages, which this host's proactive reclaim drops and refaults by tens of MB during a
 * call, and the kernel updates it lazily. The children run with glibc's mmap threshold fixed at
 * 128 KiB, so no buffer is served from already-resident heap pages. Linux only.
 *
 * <pre>
 * java -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) dev.relat.bench.PeakMemory \
 *     [ce|latent|attention|all] [F32|BF16]
 * </pre>
 * Shapes: ce T = 512, d = 4096, V = 151,936; latent B = 1 and 16, d = 4096, V = 151,936 (untied,
 * forward + backward); attention tq = 256 after a 200-position prefix, 16 / 8 heads, D = 128
 * (forward + backward).
 */
public final class PeakMemory {
    private PeakMemory() {}

    /** One measured path: a name and what it runs at the given size ("tiny" for the warm-up). */
    interface Path1 {
        void run(boolean tiny);
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--child")) {
            child(args[1], DType.valueOf(args[2]));
            return;
        }
        String which = args.length > 0 ? args[0] : "all";
        String dtype = args.length > 1 ? args[1] : "F32";
        List<String[]> pairs = new ArrayList<>();
        if (which.equals("ce") || which.equals("all")) {
            pairs.add(new String[] {"ce T=512 d=4096 V=151936", "ce-relat", "ce-libtorch"});
        }
        if (which.equals("latent") || which.equals("all")) {
            pairs.add(new String[] {"latent B=1 d=4096 V=151936", "latent1-relat", "latent1-libtorch"});
            pairs.add(new String[] {"latent B=16 d=4096 V=151936", "latent16-relat", "latent16-libtorch"});
        }
        if (which.equals("attention") || which.equals("all")) {
            pairs.add(new String[] {"attention tq=256 P=200 16/8 heads D=128", "attn-relat", "attn-libtorch"});
            pairs.add(new String[] {"attention tq=256 P=200 16/8 heads D=128", "attn-relat", "attn-sdpa"});
        }
        System.out.printf(Locale.ROOT, "| %s | path | peak extra MB | baseline MB | relat / other |%n", dtype);
        System.out.println("|---|---|---|---|---|");
        for (String[] p : pairs) {
            long[] a = childRun(p[1], dtype);
            long[] b = childRun(p[2], dtype);
            System.out.printf(Locale.ROOT, "| %s | %s | %.1f | %.0f | |%n", p[0], p[1], a[0] / 1e6, a[1] / 1e6);
            String ratio = a[0] > 0 && b[0] > 0 ? String.format(Locale.ROOT, "1/%.1f", (double) b[0] / a[0]) : "-";
            System.out.printf(Locale.ROOT, "| %s | %s | %.1f | %.0f | %s |%n", p[0], p[2], b[0] / 1e6, b[1] / 1e6, ratio);
        }
    }

    /** Runs one path in a fresh JVM; returns {peak extra bytes, baseline bytes}. */
    static long[] childRun(String path, String dtype) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                PeakMemory.class.getName(), "--child", path, dtype);
        // Every allocation of 128 KiB or more is a fresh mapping (glibc otherwise raises its mmap
        // threshold after the first large free and serves later buffers from heap pages that are
        // already resident, which a high-water mark cannot see): the call's buffers all count.
        pb.environment().put("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072");
        pb.redirectErrorStream(true);
        Process proc = pb.start();
        long[] result = null;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.startsWith("PEAK ")) {
                    String[] f = line.split(" ");
                    result = new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])};
                } else {
                    System.err.println("  [" + path + "] " + line);
                }
            }
        }
        int rc = proc.waitFor();
        if (rc != 0 || result == null) throw new IllegalStateException("child " + path + " failed with status " + rc);
        return result;
    }

    static long statusKb(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.substring(field.length() + 1).trim().split("\\s+")[0]);
            }
        }
        throw new IllegalStateException("no " + field + " in /proc/self/status");
    }

    static void child(String path, DType dtype) throws IOException {
        Path1 p = build(path, dtype);
        p.run(true);
        p.run(true);
        System.gc();
        long base = statusKb("RssAnon");
        // Anonymous memory only: no swap here, so anonymous pages leave the resident set only when
        // freed, while file-backed pages (code, the jars) come and go with the host's proactive
        // reclaim by tens of MB, as much as the quantity measured. VmHWM counts both and the kernel
        // updates it lazily, so a sampler thread polls RssAnon every millisecond instead.
        long[] polled = {base};
        AtomicBoolean done = new AtomicBoolean();
        Thread sampler = new Thread(() -> {
            while (!done.get()) {
                try {
                    polled[0] = Math.max(polled[0], statusKb("RssAnon"));
                    Thread.sleep(1);
                } catch (IOException | InterruptedException e) {
                    return;
                }
            }
        });
        sampler.setDaemon(true);
        sampler.start();
        p.run(false);
        done.set(true);
        try {
            sampler.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        long hwm = Math.max(polled[0], statusKb("RssAnon"));
        System.out.println("baseline RssAnon " + base + " kB, polled max " + hwm + " kB");
        System.out.println("PEAK " + (hwm - base) * 1024 + " " + base * 1024);
    }

    static Tensor randn(Random seeds, DType dtype, double scale, long... shape) {
        torch.manual_seed(seeds.nextLong());
        return torch.randn(shape, new TensorOptions(torch.ScalarType.Float)).mul(new Scalar(scale)).to(dtype.scalarType());
    }

    static Path1 build(String path, DType dtype) {
        Random seeds = new Random(1);
        switch (path) {
            case "ce-relat":
            case "ce-libtorch": {
                long t = 512, d = 4096, v = 151_936;
                Tensor[] big = {randn(seeds, dtype, 1, t, d), randn(seeds, dtype, 2 / Math.sqrt(d), v, d), targets(t, v)};
                Tensor[] small = {randn(seeds, dtype, 1, 8, 64), randn(seeds, dtype, 0.25, 500, 64), targets(8, 500)};
                boolean relat = path.equals("ce-relat");
                return tiny -> {
                    Tensor[] in = tiny ? small : big;
                    if (relat) {
                        LinearCrossEntropy.forwardBackward(in[0], in[1], in[2]);
                    } else {
                        Tensor hf = in[0].detach().requires_grad_(true);
                        Tensor l = torch.cross_entropy_loss(torch.linear(hf, in[1]), in[2], new TensorOptional(), 1,
                                LinearCrossEntropy.IGNORE_INDEX, 0.0);
                        l.backward(new Tensor(), new BoolOptional(), false, new TensorArrayRefOptional());
                    }
                };
            }
            case "latent1-relat":
            case "latent1-libtorch":
            case "latent16-relat":
            case "latent16-libtorch": {
                long b = path.startsWith("latent16") ? 16 : 1, d = 4096, v = 151_936;
                Tensor[] big = {randn(seeds, dtype, 1, b, d), randn(seeds, dtype, 2 / Math.sqrt(d), v, d),
                    randn(seeds, dtype, 0.05, v, d), randn(seeds, dtype, 1, b, d)};
                Tensor[] small = {randn(seeds, dtype, 1, b, 64), randn(seeds, dtype, 0.25, 500, 64),
                    randn(seeds, dtype, 0.05, 500, 64), randn(seeds, dtype, 1, b, 64)};
                boolean relat = path.endsWith("-relat");
                return tiny -> {
                    Tensor[] in = tiny ? small : big;
                    if (relat) {
                        LatentStep.Soft s = LatentStep.softForward(in[0], in[1], in[2], 1.0);
                        LatentStep.softBackward(in[0], in[1], in[2], 1.0, s, in[3]);
                    } else {
                        Tensor hf = in[0].detach().requires_grad_(true);
                        Tensor e = torch.softmax(hf.mm(in[1].t()).div(new Scalar(1.0)), 1).mm(in[2]);
                        e.backward(in[3], new BoolOptional(), false, new TensorArrayRefOptional());
                    }
                };
            }
            case "attn-relat":
            case "attn-libtorch":
            case "attn-sdpa": {
                Tensor[] big = attentionInputs(seeds, dtype, 256, 200);
                Tensor[] small = attentionInputs(seeds, dtype, 8, 4);
                return tiny -> {
                    Tensor[] in = tiny ? small : big;
                    Tensor q = in[0], k = in[1], v = in[2], dout = in[3], mask = in[4];
                    double scale = Attention.defaultScale(q.size(2));
                    if (path.equals("attn-relat")) {
                        Attention.Output o = Attention.forward(q, k, v, scale);
                        Attention.backward(dout, q, k, v, o.out(), o.lse(), scale);
                        return;
                    }
                    Tensor qg = q.detach().requires_grad_(true), kg = k.detach().requires_grad_(true),
                            vg = v.detach().requires_grad_(true);
                    Tensor out;
                    if (path.equals("attn-sdpa")) {
                        out = torch.scaled_dot_product_attention(qg.permute(1, 0, 2).unsqueeze(0),
                                kg.permute(1, 0, 2).unsqueeze(0), vg.permute(1, 0, 2).unsqueeze(0),
                                new TensorOptional(mask), 0.0, false, new DoubleOptional(scale), true)
                                .squeeze(0).permute(1, 0, 2);
                    } else {
                        long g = q.size(1) / k.size(1);
                        Tensor kh = kg.repeat_interleave(g, new LongOptional(1), new LongOptional()).permute(1, 2, 0);
                        Tensor vh = vg.repeat_interleave(g, new LongOptional(1), new LongOptional()).permute(1, 0, 2);
                        Tensor scores = torch.matmul(qg.permute(1, 0, 2), kh).mul(new Scalar(scale))
                                .masked_fill(mask.logical_not(), new Scalar(Double.NEGATIVE_INFINITY));
                        out = torch.matmul(torch.softmax(scores, -1), vh).permute(1, 0, 2);
                    }
                    out.backward(dout, new BoolOptional(), false, new TensorArrayRefOptional());
                };
            }
            default:
                throw new IllegalArgumentException("unknown path '" + path + "'");
        }
    }

    static Tensor targets(long tokens, long vocab) {
        Random r = new Random(7);
        long[] t = new long[(int) tokens];
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt((int) vocab);
        return Tensor.create(t);
    }

    /** q [tq, 16, 128], k, v [tq + prefix, 8, 128], dout, and the boolean prefix/causal mask. */
    static Tensor[] attentionInputs(Random seeds, DType dtype, long tq, long prefix) {
        long tk = tq + prefix;
        Tensor mask = torch.ones(new long[] {tq, tk}, new TensorOptions(torch.ScalarType.Bool)).tril(prefix);
        return new Tensor[] {randn(seeds, dtype, 1, tq, 16, 128), randn(seeds, dtype, 1, tk, 8, 128),
            randn(seeds, dtype, 1, tk, 8, 128), randn(seeds, dtype, 1, tq, 16, 128), mask};
    }
}
