package dev.relat.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * AdamW over a list of tensors in one kernel call (multi-tensor), libtorch's formula in fp32:
 * p = p*(1 - lr*wd); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p = p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), bias corrections in double on the host.
 * Params fp32 (or bf16 / fp16, updated in fp32 and rounded once); grads in the params' dtype or
 * fp32; moments fp32. Only pointers and sizes cross to the kernel: no copies.
 *
 * <p>An instance serves one training run: it owns the moments and the step count.
 *
 * <p>Kernels: native/src/adamw.cpp (CPU), kernels/adamw.cu (CUDA).
 */
public final class AdamW implements AutoCloseable {
    private static final String OP = "adamw_step";

    private final List<Tensor> params;
    private final List<Tensor> expAvg = new ArrayList<>();
    private final List<Tensor> expAvgSq = new ArrayList<>();
    private final double lr, beta1, beta2, eps, weightDecay;
    private final DType paramType;
    private final boolean cuda;
    private final Device device;
    private final long[] numels;
    // Host arrays of the kernel's pointers, filled once: the parameters and moments are updated in
    // place, so their data pointers do not change. Only the gradients' are written per step.
    private final PointerPointer<Pointer> p, g, m, v;
    private final LongPointer numelPointer;
    private boolean closed;
    private long step;

    /**
     * Zero moments for every parameter; the first {@link #step} is step 1. The parameters are
     * validated here and must keep their storage: the optimizer holds their data pointers.
     *
     * @param params updated in place by every step: one floating dtype, contiguous, one device
     * @param lr the learning rate
     * @param beta1 decay of the first moment
     * @param beta2 decay of the second moment
     * @param eps added to the bias-corrected sqrt(v)
     * @param weightDecay decoupled: p is scaled by 1 - lr*weightDecay before the update
     */
    public AdamW(List<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay) {
        this.params = List.copyOf(params);
        this.lr = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        int n = this.params.size();
        numels = new long[n];
        p = new PointerPointer<>(Math.max(n, 1));
        g = new PointerPointer<>(Math.max(n, 1));
        m = new PointerPointer<>(Math.max(n, 1));
        v = new PointerPointer<>(Math.max(n, 1));
        numelPointer = new LongPointer(Math.max(n, 1));
        paramType = n == 0 ? DType.F32 : Checks.floating(OP, "params[0]", this.params.get(0));
        cuda = n > 0 && this.params.get(0).is_cuda();
        device = n == 0 ? null : this.params.get(0).device();
        for (int i = 0; i < n; i++) {
            Tensor param = this.params.get(i);
            Checks.dtype(OP, "params[" + i + "]", param, paramType);
            Checks.sameDevice(OP, new String[] {"params[0]", "params[" + i + "]"}, this.params.get(0), param);
            Tensor zeros = torch.zeros_like(param).to(torch.ScalarType.Float);
            expAvg.add(zeros);
            expAvgSq.add(torch.zeros_like(zeros));
            numels[i] = param.numel();
            p.put(i, param.data_ptr());
            m.put(i, zeros.data_ptr());
            v.put(i, expAvgSq.get(i).data_ptr());
            numelPointer.put(i, numels[i]);
        }
    }

    /**
     * ReLAT's defaults: betas 0.9 / 0.999, eps 1e-8, no weight decay.
     *
     * @param params updated in place by every step: one floating dtype, contiguous, one device
     * @param lr the learning rate
     */
    public AdamW(List<Tensor> params, double lr) {
        this(params, lr, 0.9, 0.999, 1e-8, 0.0);
    }

    /**
     * One update of every parameter, in one kernel call.
     *
     * @param grads one per parameter, in the same order, each with its parameter's number of
     *     elements; all in the params' dtype or all fp32; contiguous, on the params' device
     */
    public void step(List<Tensor> grads) {
        if (closed) throw new IllegalStateException(OP + ": this optimizer is closed");
        int n = params.size();
        if (grads.size() != n) {
            throw new IllegalArgumentException(OP + ": 'grads' has " + grads.size()
                    + " tensors; expected one per parameter (" + n + ")");
        }
        if (n == 0) {
            step++;
            return;
        }
        Checks.defined(OP, "grads[0]", grads.get(0));
        DType gradType = DType.of(grads.get(0).scalar_type());
        if (gradType != paramType && gradType != DType.F32) {
            throw new IllegalArgumentException(OP + ": tensor 'grads[0]' has dtype " + grads.get(0).scalar_type()
                    + "; expected " + paramType.scalarType() + " (the params' dtype) or Float");
        }
        int deviceType = device.type().value;
        byte deviceIndex = device.index();
        for (int i = 0; i < n; i++) {
            Tensor grad = grads.get(i);
            String name = "grads[" + i + "]";
            Checks.dtype(OP, name, grad, gradType);
            if (grad.numel() != numels[i]) {
                throw new IllegalArgumentException(OP + ": tensor '" + name + "' has " + grad.numel()
                        + " elements; its parameter has " + numels[i]);
            }
            Device d = grad.device();
            if (d.type().value != deviceType || d.index() != deviceIndex) {
                throw new IllegalArgumentException(OP + ": tensor '" + name + "' is on " + d.str().getString()
                        + " but the parameters are on " + device.str().getString());
            }
            g.put(i, grad.data_ptr());
        }
        long next = step + 1;
        Kernels.launch(OP, params.get(0), (library, stream) -> library.adamwStep(p, g, m, v,
                numelPointer, n, paramType.tag, gradType.tag, lr, beta1, beta2, eps, weightDecay, next,
                stream));
        step = next;
    }

    /** {@return the steps taken so far: the bias corrections of the next step use this + 1} */
    public long stepCount() {
        return step;
    }

    List<Tensor> expAvg() {
        return expAvg;
    }

    List<Tensor> expAvgSq() {
        return expAvgSq;
    }

    /** Frees the host pointer arrays (the tensors stay); a later {@link #step} throws. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        p.close();
        g.close();
        m.close();
        v.close();
        numelPointer.close();
    }

    /**
     * One AdamW step (step >= 1) over every tensor of the lists, in one kernel call. All tensors
     * contiguous and on one device; params share one dtype, grads share one dtype (the params' or
     * fp32), moments are fp32; each grad and moment has its parameter's shape.
     */
    static void update(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq,
            double lr, double beta1, double beta2, double eps, double weightDecay, long step) {
        int n = params.size();
        for (var e : List.of(List.of("grads", grads), List.of("expAvg", expAvg), List.of("expAvgSq", expAvgSq))) {
            List<?> list = (List<?>) e.get(1);
            if (list.size() != n) {
                throw new IllegalArgumentException(OP + ": '" + e.get(0) + "' has " + list.size()
                        + " tensors; expected one per parameter (" + n + ")");
            }
        }
        if (n == 0) return;
        DType paramType = Checks.floating(OP, "params[0]", params.get(0));
        Checks.defined(OP, "grads[0]", grads.get(0));
        DType gradType = DType.of(grads.get(0).scalar_type());
        if (gradType != paramType && gradType != DType.F32) {
            throw new IllegalArgumentException(OP + ": tensor 'grads[0]' has dtype " + grads.get(0).scalar_type()
                    + "; expected " + paramType.scalarType() + " (the params' dtype) or Float");
        }
        boolean cuda = params.get(0).is_cuda();
        try (PointerPointer<Pointer> p = new PointerPointer<>(n);
                PointerPointer<Pointer> g = new PointerPointer<>(n);
                PointerPointer<Pointer> m = new PointerPointer<>(n);
                PointerPointer<Pointer> v = new PointerPointer<>(n);
                LongPointer numels = new LongPointer(n)) {
            for (int i = 0; i < n; i++) {
                String pi = "params[" + i + "]", gi = "grads[" + i + "]";
                String mi = "expAvg[" + i + "]", vi = "expAvgSq[" + i + "]";
                Tensor param = params.get(i), grad = grads.get(i);
                Checks.dtype(OP, pi, param, paramType);
                Checks.dtype(OP, gi, grad, gradType);
                long[] shape = Checks.shape(param);
                Checks.shape(OP, gi, grad, shape);
                Checks.dtype(OP, mi, expAvg.get(i), DType.F32);
                Checks.shape(OP, mi, expAvg.get(i), shape);
                Checks.dtype(OP, vi, expAvgSq.get(i), DType.F32);
                Checks.shape(OP, vi, expAvgSq.get(i), shape);
                Checks.sameDevice(OP, new String[] {"params[0]", pi, gi, mi, vi}, params.get(0), param, grad,
                        expAvg.get(i), expAvgSq.get(i));
                p.put(i, param.data_ptr());
                g.put(i, grad.data_ptr());
                m.put(i, expAvg.get(i).data_ptr());
                v.put(i, expAvgSq.get(i).data_ptr());
                numels.put(i, param.numel());
            }
            if (step < 1) throw new IllegalArgumentException(OP + ": step must be >= 1, got " + step);
            Kernels.launch(OP, params.get(0), (library, stream) -> library.adamwStep(p, g, m, v,
                    numels, n, paramType.tag, gradType.tag, lr, beta1, beta2, eps, weightDecay, step,
                    stream));
        }
    }

    @Override
    public String toString() {
        return "AdamW(" + params.size() + " tensors, lr=" + lr + ", betas=" + Arrays.toString(new double[] {beta1,
            beta2}) + ", eps=" + eps + ", weightDecay=" + weightDecay + ", step=" + step + ")";
    }
}
