/**
 * <b>Internal</b>: the {@code relat} command line on picocli: {@code solve}, {@code profile},
 * {@code eval}, {@code bench} and {@code selftest} ({@link Main} is the entry point), the embedded
 * random-weight demo model, and the text and JSON output. It may change without notice. picocli
 * is needed by this package only: no other package loads it, so a program that uses relat as a
 * library may leave picocli off its classpath. These classes run where it is on the classpath, as
 * under the {@code ./relat} launcher.
 */
package dev.relat.cli;
