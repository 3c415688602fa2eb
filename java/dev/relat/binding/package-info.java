/**
 * The JavaCPP binding of the two kernel libraries, librelat_cpu and librelat_cuda. Internal: a
 * method here takes raw addresses and returns the raw relat_status, so a kernel is called through
 * the ops of {@link dev.relat.ops}, which check the tensors first and turn an error status into an
 * exception. Apart from the ops, only {@code dev.relat.profile} calls the binding, for the
 * profiler ranges.
 *
 * <p>{@code KernelLibrary} (the functions both libraries export), {@code CpuKernels} and
 * {@code CudaKernels} are generated at build time from {@code native/include/relat/relat.h} by
 * {@code cmake/GenerateBindings.java} into {@code target/generated-sources/relat}: change the
 * header or the generator, never the generated classes. This file is hand-written and is the
 * only source of the package under {@code java/}; the generator writes no package-info.
 */
package dev.relat.binding;
