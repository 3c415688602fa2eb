package dev.relat.bench;

import dev.relat.ops.AdamW;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * One AdamW step over ReLAT's LoRA parameters on the CPU: rank 8 A [8, in] and B [out, 8] on the
 * q/k/v/o/gate/up/down projections of every layer (Qwen3-0.6B: 28 layers, 392 tensors, 4.9 M
 * parameters; Qwen3-8B: 36 layers, 504 tensors, 21.8 M parameters), fp32 parameters and grads, on
 * {@code device} ({@link BenchDevice}).
 * relat: one multi-tensor call (including the Java side that gathers the pointers). libtorch:
 * torch::optim::AdamW's step (a loop of element-wise ops per tensor), and libtorchFlat, the same
 * formula as in-place libtorch ops over one flat buffer that holds every parameter (what a foreach
 * implementation could reach at best). Baselines: the optimizer step updates its tensors in place
 * (its temporaries are its own); libtorchFlat releases its temporaries each call.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class AdamWBench {
    @Param({"0.6B", "8B"})
    public String model;

    /** cpu, cuda or cuda:N ({@link BenchDevice}). */
    @Param({"cpu"})
    public String device;

    private BenchDevice dev;
    private AdamW relat;
    private List<Tensor> grads;
    private org.bytedeco.pytorch.AdamW torchAdamW;
    private Tensor flatP, flatG, flatM, flatV;
    private long step;

    static List<long[]> loraShapes(String model) {
        boolean big = model.equals("8B");
        long layers = big ? 36 : 28, hidden = big ? 4096 : 1024, inter = big ? 12288 : 3072;
        long qOut = (big ? 32 : 16) * 128, kvOut = 8 * 128, rank = 8;
        long[][] projections = {{hidden, qOut}, {hidden, kvOut}, {hidden, kvOut}, {qOut, hidden},
            {hidden, inter}, {hidden, inter}, {inter, hidden}};
        List<long[]> shapes = new ArrayList<>();
        for (long l = 0; l < layers; l++) {
            for (long[] p : projections) {
                shapes.add(new long[] {rank, p[0]});  // A
                shapes.add(new long[] {p[1], rank});  // B
            }
        }
        return shapes;
    }

    @Setup
    public void setup() {
        dev = BenchDevice.of(device);
        TensorOptions f32 = dev.options(torch.ScalarType.Float);
        List<Tensor> params = new ArrayList<>();
        grads = new ArrayList<>();
        TensorVector torchParams = new TensorVector();
        long total = 0;
        for (long[] shape : loraShapes(model)) {
            Tensor p = torch.randn(shape, f32);
            Tensor g = torch.randn(shape, f32);
            params.add(p);
            grads.add(g);
            Tensor tp = p.clone().requires_grad_(true);
            tp.mul(g).sum().backward();  // tp.grad() = g
            torchParams.push_back(tp);
            total += p.numel();
        }
        relat = new AdamW(params, 2e-5);
        AdamWOptions options = new AdamWOptions(2e-5);
        options.weight_decay().put(0.0);
        torchAdamW = new org.bytedeco.pytorch.AdamW(torchParams, options);
        flatP = torch.randn(new long[] {total}, f32);
        flatG = torch.randn(new long[] {total}, f32);
        flatM = torch.zeros(new long[] {total}, f32);
        flatV = torch.zeros(new long[] {total}, f32);
        step = 0;
    }

    @Benchmark
    public long relat() {
        dev.run(() -> relat.step(grads));
        return relat.stepCount();
    }

    @Benchmark
    public void libtorchAdamW() {
        dev.run(() -> torchAdamW.step());
    }

    @Benchmark
    public void libtorchFlat(Blackhole bh) {
        dev.released(bh, this::flatStep);
    }

    private Tensor flatStep() {
        step++;
        double lr = 2e-5, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
        flatM.mul_(new Scalar(b1)).add_(flatG, new Scalar(1 - b1));
        flatV.mul_(new Scalar(b2)).add_(flatG.mul(flatG), new Scalar(1 - b2));
        Tensor denom = flatV.sqrt().div_(new Scalar(Math.sqrt(bc2))).add_(new Scalar(eps));
        flatP.sub_(flatM.div(denom).mul_(new Scalar(lr / bc1)));
        return flatP;
    }
}
