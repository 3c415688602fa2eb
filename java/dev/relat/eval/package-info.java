/**
 * <b>Internal</b>: the evaluation harness behind {@code relat eval}. It reads a JSON-lines
 * benchmark ({@link Dataset}, with presets for gsm8k, aime, math and multiple choice), runs every
 * method on every question through a {@link Solver} (the command line passes one backed by the
 * engine), extracts and compares the answers ({@link Answers}), and writes results.jsonl,
 * summary.md, two PNG plots and run.json into the output folder; a rerun on the same folder
 * resumes. It may change without notice.
 */
package dev.relat.eval;
