package dev.relat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * The operating system's reason for an I/O failure in words, for one-line error messages: Java's
 * file exceptions often carry nothing but the path.
 */
public final class IoErrors {
    private IoErrors() {}

    /**
     * @param e an I/O failure; an {@link UncheckedIOException} is read through to its cause
     * @return "no such file or directory", "permission denied", ... or the exception's own message
     */
    public static String reason(Throwable e) {
        if (e instanceof UncheckedIOException u) e = u.getCause();
        if (e instanceof NoSuchFileException) return "no such file or directory";
        if (e instanceof AccessDeniedException) return "permission denied";
        if (e instanceof FileAlreadyExistsException) return "already exists (and is not what was expected there)";
        if (e instanceof NotDirectoryException) return "not a directory";
        if (e instanceof DirectoryNotEmptyException) return "directory not empty";
        if (e instanceof FileSystemException f && f.getReason() != null) return f.getReason();
        if (e instanceof IOException && e.getMessage() != null) return e.getMessage();
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    /**
     * @param e an I/O failure
     * @return "path: reason" when the exception names a file (both files of a move), else the reason
     */
    public static String describe(IOException e) {
        if (e instanceof FileSystemException f && f.getFile() != null) {
            return f.getFile() + (f.getOtherFile() != null ? " -> " + f.getOtherFile() : "") + ": " + reason(e);
        }
        return reason(e);
    }

    /**
     * What is at a path that should be a regular file, when it is not one: "no such file",
     * "a directory", "a link to a missing file", "not a regular file (a FIFO, socket or device)".
     *
     * @param p the path that should name a regular file; links are followed
     * @return the words for what is there ("a regular file" when it is one after all)
     */
    public static String notARegularFile(Path p) {
        if (Files.isSymbolicLink(p) && !Files.exists(p)) return "a link to a missing file";
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return "no such file";
        if (Files.isDirectory(p)) return "a directory, not a file";
        if (!Files.isRegularFile(p)) return "not a regular file (a FIFO, socket or device)";
        return "a regular file";
    }
}
