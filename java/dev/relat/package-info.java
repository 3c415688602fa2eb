/**
 * What every relat package shares. {@link RelatException} is <b>API</b>: the base of every
 * exception relat throws on purpose (a question it cannot solve, a checkpoint it cannot use, a
 * failed kernel, a bad chat template), so one catch covers them. {@link IoErrors} is
 * <b>internal</b> (the wording of I/O failures in the other packages' messages) and may change
 * without notice.
 *
 * <p>The API packages are {@link dev.relat.engine} (the ReLAT engine; its documentation states
 * the native-memory rules for all of relat), {@link dev.relat.model} (Qwen models on libtorch) and
 * {@link dev.relat.ops} (relat's kernels as libtorch ops). Internal: {@link dev.relat.binding},
 * {@link dev.relat.model.template}, {@link dev.relat.eval}, {@link dev.relat.profile} and
 * {@link dev.relat.cli}.
 */
package dev.relat;
