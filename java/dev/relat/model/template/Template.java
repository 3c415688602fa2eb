package dev.relat.model.template;

import dev.relat.model.template.Node.Stmt;
import java.util.List;
import java.util.Map;

/**
 * A Jinja2 template compiled with the settings Hugging Face uses for chat templates
 * (trim_blocks=True, lstrip_blocks=True), covering the subset chat templates use: if / elif /
 * else, for (with loop.*, an if filter, else, break / continue), set (names, namespace
 * attributes, tuples, blocks), macros, expressions with Python semantics (literals, lists, dicts,
 * attribute and item access, slicing, filters, tests, `in`, `~`, arithmetic, string and dict
 * methods) and the globals namespace, range, dict, raise_exception and strftime_now. Errors, at
 * compile time or at render time, are {@link TemplateException}s naming the line and column; so
 * are the budgets that keep a hostile template from hanging or exhausting memory (nesting depth,
 * steps, string and list sizes).
 */
public final class Template {
    private final Source source;
    private final List<Stmt> body;

    private Template(Source source, List<Stmt> body) {
        this.source = source;
        this.body = body;
    }

    /** Parses the template; syntax errors are thrown here. */
    public static Template compile(String text) {
        Source source = new Source(text);
        try {
            List<Stmt> body = new Parser(source, new Lexer(source, true, true).tokenize()).parseTemplate();
            return new Template(source, body);
        } catch (StackOverflowError e) {
            throw new TemplateException("nested too deeply to compile", 1, 1);  // the parser's own limit comes first
        }
    }

    /**
     * Renders with the given variables. Values are null (None), Boolean, Integer / Long, Float /
     * Double, String, List and Map (with String keys), nested freely.
     */
    public String render(Map<String, ?> variables) {
        Map<String, Object> context = new java.util.LinkedHashMap<>();
        variables.forEach((k, v) -> context.put(k, normalise(v)));
        try {
            return new Interpreter(source).render(body, context);
        } catch (StackOverflowError e) {
            throw new TemplateException("nested too deeply to render", 1, 1);
        }
    }

    /** Java values as template values: ints become Long, floats Double, collections copied. */
    private static Object normalise(Object v) {
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof Float f) return f.doubleValue();
        if (v instanceof Map<?, ?> m) {
            Map<Object, Object> out = new java.util.LinkedHashMap<>();
            m.forEach((k, x) -> out.put(k, normalise(x)));
            return java.util.Collections.unmodifiableMap(out);
        }
        if (v instanceof List<?> l) {
            List<Object> out = new java.util.ArrayList<>();
            for (Object x : l) out.add(normalise(x));
            return java.util.Collections.unmodifiableList(out);
        }
        if (v == null || v instanceof Long || v instanceof Double || v instanceof Boolean || v instanceof String) return v;
        throw new IllegalArgumentException("template variable of unsupported type " + v.getClass().getName());
    }
}
