/**
 * <b>Internal</b>: profiling markers for {@code relat profile} and {@code --profile}.
 * {@link Nvtx} reaches NVTX ranges and cudaProfilerStart / cudaProfilerStop through
 * librelat_cuda and does nothing without CUDA; {@link PhaseProfiler} is the engine's
 * {@link dev.relat.engine.PhaseListener} that wraps each phase of one question in a range, so
 * Nsight captures exactly that question. It may change without notice.
 */
package dev.relat.profile;
