/**
 * The kernels of the native core as Java ops over libtorch tensors. API: the model and the
 * engine reach every relat kernel through this package and nothing else.
 *
 * <p>Each op checks its arguments in Java (dtype, shape, layout, device), then calls the
 * kernel through {@code Kernels.launch}, which picks librelat_cpu or librelat_cuda from the
 * device of the op's tensors. Only data pointers and sizes cross to the native side.
 *
 * <p>Conventions shared by the ops, unless a method says otherwise:
 * <ul>
 *   <li>Activations and weights are fp32, bf16 or fp16 ({@link dev.relat.ops.DType}), one dtype
 *       per call; accumulation is fp32. What is saved for a backward (rstd, log-sum-exp) and
 *       weight gradients are fp32. Token ids, targets and positions are int64 (the embedding
 *       also takes int32 ids).
 *   <li>Tensors are contiguous. The exceptions are stated where they apply: KV caches and
 *       {@code k}, {@code v} of the attentions, q and k of RoPE, and the logits of sampling may
 *       have a larger stride between rows, so views into a larger buffer are read in place.
 *   <li>All tensors of a call are on one device. On CUDA the kernel runs on that device (under a
 *       device guard) and on libtorch's current stream for it, so it is ordered with the libtorch
 *       work around it and is asynchronous to the host: an error inside a kernel may surface at a
 *       later call. On the CPU the call returns when the work is done.
 *   <li>A method either allocates its outputs with libtorch and returns them (the caller owns
 *       them like any libtorch tensor) or writes into output tensors the caller passes, so that
 *       the hot path can reuse them; many ops offer both. An output may alias an input only where
 *       the method says so. Scratch memory is allocated by the op on the tensors' device, or
 *       passed in as a workspace tensor sized by the op's {@code ...WorkspaceBytes} query.
 *   <li>A bad argument throws {@link java.lang.IllegalArgumentException} naming the op and the
 *       tensor at fault, before the kernel is called; a CUDA tensor without librelat_cuda throws
 *       {@link java.lang.IllegalStateException}; an error status from a kernel throws
 *       {@link dev.relat.ops.NativeKernelException} with the native library's message.
 * </ul>
 *
 * <p>Who frees the native memory behind these tensors, and when, is set out in the package
 * documentation of {@link dev.relat.engine}.
 */
package dev.relat.ops;
