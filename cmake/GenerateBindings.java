import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes the JNI binding of both kernel libraries from relat.h, so the header is the one list of
 * kernels: {@code KernelLibrary} (an interface with every function both libraries export, named in
 * camelCase without the prefix), {@code CpuKernels} and {@code CudaKernels} (JavaCPP classes whose
 * private natives are {@code relat_cpu_*} / {@code relat_cuda_*}, each implementing the interface,
 * plus the functions of its library alone). Run by Maven before javac:
 * {@code java cmake/GenerateBindings.java native/include/relat/relat.h OUT_DIR}. A C type it
 * does not know stops the build, naming the function and parameter.
 */
public final class GenerateBindings {
    private static final String PACKAGE = "dev.relat.binding";

    record Param(String cType, String name) {}

    record Function(String name, String returnType, List<Param> params) {}

    record Library(String prefix, String className, String link, String doc, String preload) {}

    private static final Library CPU = new Library("relat_cpu_", "CpuKernels", "relat_cpu",
            "librelat_cpu, the CPU kernel library (native/).",
            // libtorch first: it brings the OpenMP runtime (libgomp) that librelat_cpu links against.
            "Loader.load(org.bytedeco.pytorch.global.torch.class);");
    private static final Library CUDA = new Library("relat_cuda_", "CudaKernels", "relat_cuda",
            "librelat_cuda, the CUDA kernel library (kernels/). It is built only where nvcc was found"
                    + " and loaded only when a tensor lives on a CUDA device; cudart is linked"
                    + " statically, so at run time it needs nothing but the NVIDIA driver.",
            null);

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: java GenerateBindings.java relat.h OUT_DIR");
            System.exit(2);
        }
        Path header = Path.of(args[0]);
        Map<String, List<Function>> byLibrary = parse(Files.readString(header));
        List<Function> cpu = byLibrary.get(CPU.prefix);
        List<Function> cuda = byLibrary.get(CUDA.prefix);
        List<Function> shared = new ArrayList<>();
        for (Function f : cpu) {
            if (cuda.stream().anyMatch(g -> g.equals(f))) shared.add(f);
        }
        Path out = Path.of(args[1]).resolve(PACKAGE.replace('.', '/'));
        Files.createDirectories(out);
        write(out.resolve("KernelLibrary.java"), library(shared));
        write(out.resolve(CPU.className + ".java"), binding(CPU, cpu, shared));
        write(out.resolve(CUDA.className + ".java"), binding(CUDA, cuda, shared));
    }

    /** Writes only when the text changed, so an unchanged header does not trigger a recompile. */
    private static void write(Path file, String text) throws IOException {
        if (Files.exists(file) && Files.readString(file).equals(text)) return;
        Files.writeString(file, text);
    }

    // ---- parsing relat.h ----------------------------------------------------------------------

    private static final Pattern OP = Pattern.compile("RELAT_OP\\(\\s*(\\w+)\\s*,\\s*\\(([^)]*)\\)\\s*\\)");
    private static final Pattern API = Pattern.compile(
            "RELAT_API\\s+([\\w\\s*]+?)\\s*\\b(relat_(?:cpu|cuda)_)(\\w+)\\s*\\(([^)]*)\\)\\s*;");

    static Map<String, List<Function>> parse(String text) {
        String code = text.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ")
                .replaceAll("(?m)^\\s*#(?:[^\n]*\\\\\n)*[^\n]*", " ");
        Map<String, List<Function>> byLibrary = new LinkedHashMap<>();
        byLibrary.put(CPU.prefix, new ArrayList<>());
        byLibrary.put(CUDA.prefix, new ArrayList<>());
        // One pass in header order over both forms, so the generated order is the header's.
        Matcher op = OP.matcher(code);
        Matcher api = API.matcher(code);
        int at = 0;
        while (true) {
            boolean hasOp = op.find(at), hasApi = api.find(at);
            if (!hasOp && !hasApi) break;
            if (hasOp && (!hasApi || op.start() < api.start())) {
                Function f = new Function(op.group(1), "relat_status", params(op.group(1), op.group(2)));
                byLibrary.get(CPU.prefix).add(f);
                byLibrary.get(CUDA.prefix).add(f);
                at = op.end();
            } else {
                String name = api.group(3);
                byLibrary.get(api.group(2)).add(
                        new Function(name, normalise(api.group(1)), params(name, api.group(4))));
                at = api.end();
            }
        }
        if (byLibrary.get(CPU.prefix).isEmpty()) throw new IllegalStateException("no function found");
        return byLibrary;
    }

    private static List<Param> params(String function, String list) {
        List<Param> params = new ArrayList<>();
        String trimmed = list.trim();
        if (trimmed.isEmpty() || trimmed.equals("void")) return params;
        for (String p : trimmed.split(",")) {
            Matcher m = Pattern.compile("^(.*?)\\s*\\b(\\w+)$").matcher(p.trim());
            if (!m.matches()) throw new IllegalStateException(function + ": cannot read parameter '" + p + "'");
            params.add(new Param(normalise(m.group(1)), m.group(2)));
        }
        return params;
    }

    /** "const void *const *" -> "const void*const*": one spelling per C type. */
    private static String normalise(String cType) {
        return cType.trim().replaceAll("\\s+", " ").replaceAll("\\s*\\*\\s*", "*");
    }

    // ---- C types to JavaCPP declarations ------------------------------------------------------

    private static String javaParam(Function f, Param p) {
        String name = camel(p.name, false);
        String type = switch (p.cType) {
            case "int64_t", "int" -> p.cType.equals("int") ? "int" : "long";
            case "uint64_t" -> "@Cast(\"uint64_t\") long";
            case "float" -> "float";
            case "double" -> "double";
            case "relat_dtype", "relat_index_dtype", "relat_cpu_gemm" -> "@Cast(\"" + p.cType + "\") int";
            case "relat_stream" -> "@Cast(\"relat_stream\") Pointer";
            case "const char*" -> "@Cast(\"const char*\") String";
            case "const void*" -> "@Const Pointer";
            case "void*" -> "Pointer";
            // A byte count the call writes on the host: a Java long[1].
            case "int64_t*" -> p.name.endsWith("bytes") ? "@Cast(\"int64_t*\") long[]" : "@Cast(\"int64_t*\") Pointer";
            case "float*", "const float*", "const int64_t*", "const int32_t*" -> "@Cast(\"" + p.cType + "\") Pointer";
            // Host arrays of pointers (AdamW's tensor lists).
            case "void*const*", "const void*const*", "float*const*" -> "@Cast(\"" + p.cType + "\") PointerPointer<?>";
            default -> throw new IllegalStateException(f.name + ": parameter '" + p.name
                    + "' has a C type the generator does not map: " + p.cType);
        };
        return type + " " + name;
    }

    private static String javaReturn(Function f) {
        return switch (f.returnType) {
            case "relat_status", "int" -> "int";
            case "relat_cpu_gemm" -> "@Cast(\"int\") int";
            case "const char*" -> "@Cast(\"const char*\") String";
            default -> throw new IllegalStateException(f.name + ": return type not mapped: " + f.returnType);
        };
    }

    /** The Java type alone (no JavaCPP annotations), for the interface and the forwarding methods. */
    private static String plain(String declaration) {
        return declaration.replaceAll("@\\w+(\\(\"[^\"]*\"\\))?\\s*", "");
    }

    private static String camel(String snake, boolean upperFirst) {
        StringBuilder b = new StringBuilder();
        boolean up = upperFirst;
        for (char c : snake.toCharArray()) {
            if (c == '_') {
                up = true;
            } else {
                b.append(up ? Character.toUpperCase(c) : c);
                up = false;
            }
        }
        return b.toString();
    }

    private static String signature(Function f, boolean annotated, String javaName) {
        List<String> ps = new ArrayList<>();
        for (Param p : f.params) ps.add(annotated ? javaParam(f, p) : plain(javaParam(f, p)));
        String ret = annotated ? javaReturn(f) : plain(javaReturn(f));
        return ret + " " + javaName + "(" + String.join(", ", ps) + ")";
    }

    private static String call(Function f, String target) {
        List<String> names = new ArrayList<>();
        for (Param p : f.params) names.add(camel(p.name, false));
        return target + "(" + String.join(", ", names) + ")";
    }

    // ---- the generated files ------------------------------------------------------------------

    private static final String NOTICE = "// Generated from native/include/relat/relat.h by cmake/GenerateBindings.java"
            + " at build time; do not edit.\n";

    private static String library(List<Function> shared) {
        StringBuilder b = new StringBuilder(NOTICE);
        b.append("package ").append(PACKAGE).append(";\n\n");
        b.append("import org.bytedeco.javacpp.Pointer;\nimport org.bytedeco.javacpp.PointerPointer;\n\n");
        b.append("/**\n * Every function that librelat_cpu and librelat_cuda both export, in relat.h's order: the\n"
                + " * method {@code fooBar} is {@code relat_<lib>_foo_bar}, documented in relat.h. Ops pick the\n"
                + " * library from their tensors' device ({@code dev.relat.ops.Kernels}).\n */\n");
        b.append("public interface KernelLibrary {\n");
        for (Function f : shared) {
            b.append("    ").append(signature(f, false, camel(f.name, false))).append(";\n\n");
        }
        trimBlank(b);
        return b.append("}\n").toString();
    }

    private static String binding(Library lib, List<Function> all, List<Function> shared) {
        StringBuilder b = new StringBuilder(NOTICE);
        b.append("package ").append(PACKAGE).append(";\n\n");
        for (String i : new String[] {"org.bytedeco.javacpp.Loader", "org.bytedeco.javacpp.Pointer",
                "org.bytedeco.javacpp.PointerPointer", "org.bytedeco.javacpp.annotation.Cast",
                "org.bytedeco.javacpp.annotation.Const", "org.bytedeco.javacpp.annotation.Name",
                "org.bytedeco.javacpp.annotation.Platform"}) {
            b.append("import ").append(i).append(";\n");
        }
        b.append("\n/**\n * JNI binding of ").append(lib.doc).append("\n * Pointers pass through as addresses:"
                + " nothing is copied. Use {@link #INSTANCE}.\n */\n");
        b.append("@Platform(include = \"relat/relat.h\", link = \"").append(lib.link).append("\")\n");
        b.append("public final class ").append(lib.className).append(" implements KernelLibrary {\n");
        b.append("    static {\n");
        if (lib.preload != null) b.append("        ").append(lib.preload).append("\n");
        b.append("        Loader.load();\n    }\n\n");
        b.append("    public static final ").append(lib.className).append(" INSTANCE = new ")
                .append(lib.className).append("();\n\n");
        b.append("    private ").append(lib.className).append("() {}\n\n");
        b.append("    /** Forces the native library to load; throws if it cannot. */\n");
        b.append("    public static void load() {}\n\n");
        for (Function f : all) {
            String javaName = camel(f.name, false);
            String nativeName = "n" + camel(f.name, true);
            if (shared.contains(f)) b.append("    @Override\n");
            b.append("    public ").append(signature(f, false, javaName)).append(" {\n");
            b.append("        return ").append(call(f, nativeName)).append(";\n    }\n\n");
            b.append("    @Name(\"").append(lib.prefix).append(f.name).append("\")\n");
            b.append("    private static native ").append(signature(f, true, nativeName)).append(";\n\n");
        }
        trimBlank(b);
        return b.append("}\n").toString();
    }

    private static void trimBlank(StringBuilder b) {
        if (b.toString().endsWith("\n\n")) b.setLength(b.length() - 1);
    }

    private GenerateBindings() {}
}
