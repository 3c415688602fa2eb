package dev.relat.model.template;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Python value semantics for template values. Values are: null (None), {@link Undefined}, Boolean,
 * Long, Double, String, List, Map (insertion ordered), {@link Namespace}, {@link LoopInfo} and
 * {@link Callable}. Strings index and slice by code point, as Python does.
 */
final class Values {
    private Values() {}

    /** A name or attribute that does not exist. Printing it gives "", testing it gives false. */
    static final class Undefined {
        final String name;

        Undefined(String name) {
            this.name = name;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Undefined;
        }

        @Override
        public int hashCode() {
            return 0;
        }

        @Override
        public String toString() {
            return "";
        }
    }

    /** A Python tuple: a fixed list that prints as (a, b). */
    static final class Tuple extends java.util.AbstractList<Object> {
        private final Object[] items;

        Tuple(Object... items) {
            this.items = items.clone();
        }

        @Override
        public Object get(int index) {
            return items[index];
        }

        @Override
        public int size() {
            return items.length;
        }
    }

    /** namespace(...): the one mutable object, so loops can carry state out ({% set ns.x = ... %}). */
    static final class Namespace {
        final Map<String, Object> attributes = new LinkedHashMap<>();
    }

    /** Something a template can call: a global function or a macro. */
    interface Callable {
        Object call(List<Object> args, Map<String, Object> kwargs, int at);
    }

    /** The loop variable of a for loop. */
    static final class LoopInfo {
        final List<Object> items;
        int index0;
        final int depth;

        LoopInfo(List<Object> items, int depth) {
            this.items = items;
            this.depth = depth;
        }

        Object get(String name) {
            int n = items.size();
            return switch (name) {
                case "index0" -> (long) index0;
                case "index" -> (long) index0 + 1;
                case "revindex0" -> (long) (n - index0 - 1);
                case "revindex" -> (long) (n - index0);
                case "first" -> index0 == 0;
                case "last" -> index0 == n - 1;
                case "length" -> (long) n;
                case "depth" -> (long) depth;
                case "depth0" -> (long) depth - 1;
                case "previtem" -> index0 > 0 ? items.get(index0 - 1) : new Undefined("loop.previtem");
                case "nextitem" -> index0 < n - 1 ? items.get(index0 + 1) : new Undefined("loop.nextitem");
                default -> new Undefined("loop." + name);
            };
        }
    }

    static boolean truthy(Object v) {
        if (v == null || v instanceof Undefined) return false;
        if (v instanceof Boolean b) return b;
        if (v instanceof Long l) return l != 0;
        if (v instanceof Double d) return d != 0;
        if (v instanceof String s) return !s.isEmpty();
        if (v instanceof Collection<?> c) return !c.isEmpty();
        if (v instanceof Map<?, ?> m) return !m.isEmpty();
        return true;
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double toDouble(Object v) {
        if (v instanceof Long l) return l;
        if (v instanceof Double d) return d;
        if (v instanceof Boolean b) return b ? 1 : 0;
        throw new IllegalArgumentException("expected a number, got " + typeName(v));
    }

    static long toLong(Object v) {
        if (v instanceof Long l) return l;
        if (v instanceof Boolean b) return b ? 1 : 0;
        if (v instanceof Double d && d == Math.floor(d)) return d.longValue();
        throw new IllegalArgumentException("expected an integer, got " + typeName(v));
    }

    static String typeName(Object v) {
        if (v == null) return "NoneType";
        if (v instanceof Undefined u) return "undefined ('" + u.name + "' is undefined)";
        if (v instanceof Boolean) return "bool";
        if (v instanceof Long) return "int";
        if (v instanceof Double) return "float";
        if (v instanceof String) return "str";
        if (v instanceof Tuple) return "tuple";
        if (v instanceof List) return "list";
        if (v instanceof Map) return "dict";
        if (v instanceof Namespace) return "namespace";
        if (v instanceof LoopInfo) return "loop";
        if (v instanceof Callable) return "function";
        return v.getClass().getSimpleName();
    }

    /** Python str(): what {{ x }} prints (Undefined prints as ""). */
    static String str(Object v) {
        if (v instanceof String s) return s;
        if (v instanceof Undefined) return "";
        return repr(v);
    }

    /** Python repr(). */
    static String repr(Object v) {
        if (v == null) return "None";
        if (v instanceof Undefined) return "";
        if (v instanceof Boolean b) return b ? "True" : "False";
        if (v instanceof Long l) return l.toString();
        if (v instanceof Double d) return floatRepr(d);
        if (v instanceof String s) return stringRepr(s);
        if (v instanceof Tuple t) {
            StringBuilder b = new StringBuilder("(");
            for (int i = 0; i < t.size(); i++) {
                if (i > 0) b.append(", ");
                b.append(repr(t.get(i)));
            }
            return b.append(t.size() == 1 ? ",)" : ")").toString();
        }
        if (v instanceof List<?> list) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) b.append(", ");
                b.append(repr(list.get(i)));
            }
            return b.append(']').toString();
        }
        if (v instanceof Map<?, ?> map) {
            StringBuilder b = new StringBuilder("{");
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!first) b.append(", ");
                first = false;
                b.append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (v instanceof Namespace ns) return "<Namespace " + repr(ns.attributes) + ">";
        return "<" + typeName(v) + ">";
    }

    /** Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal bd = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = bd.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - bd.scale();
        String sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
        }
        String plain = bd.abs().toPlainString();
        if (!plain.contains(".")) plain += ".0";
        return sign + plain;
    }

    private static String stringRepr(String s) {
        char quote = s.contains("'") && !s.contains("\"") ? '"' : '\'';
        StringBuilder b = new StringBuilder().append(quote);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c == quote) b.append('\\').append(c);
                    else if (c < 0x20 || c == 0x7f) b.append(String.format("\\x%02x", (int) c));
                    else b.append(c);
                }
            }
        }
        return b.append(quote).toString();
    }

    /**
     * Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=indent), so separators are
     * ", " and ": " without indent, "," and ": " with it; non-ASCII characters are kept.
     */
    static String toJson(Object v, Integer indent, boolean sortKeys) {
        StringBuilder b = new StringBuilder();
        json(b, v, indent, sortKeys, 0);
        return b.toString();
    }

    private static void json(StringBuilder b, Object v, Integer indent, boolean sortKeys, int level) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof Boolean bool) {
            b.append(bool ? "true" : "false");
        } else if (v instanceof Long l) {
            b.append(l);
        } else if (v instanceof Double d) {
            b.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : floatRepr(d));
        } else if (v instanceof String s) {
            jsonString(b, s);
        } else if (v instanceof List<?> list) {
            if (list.isEmpty()) {
                b.append("[]");
                return;
            }
            b.append('[');
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) b.append(indent == null ? ", " : ",");
                newline(b, indent, level + 1);
                json(b, list.get(i), indent, sortKeys, level + 1);
            }
            newline(b, indent, level);
            b.append(']');
        } else if (v instanceof Map<?, ?> || v instanceof Namespace) {
            Map<?, ?> map = v instanceof Namespace ns ? ns.attributes : (Map<?, ?>) v;
            if (map.isEmpty()) {
                b.append("{}");
                return;
            }
            List<Map.Entry<?, ?>> entries = new ArrayList<>(map.entrySet());
            if (sortKeys) entries.sort((x, y) -> str(x.getKey()).compareTo(str(y.getKey())));
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : entries) {
                if (!first) b.append(indent == null ? ", " : ",");
                first = false;
                newline(b, indent, level + 1);
                Object key = e.getKey();
                jsonString(b, key instanceof String s ? s : key == null ? "null" : repr(key).toLowerCase());
                b.append(": ");
                json(b, e.getValue(), indent, sortKeys, level + 1);
            }
            newline(b, indent, level);
            b.append('}');
        } else {
            throw new IllegalArgumentException("Object of type " + typeName(v) + " is not JSON serializable");
        }
    }

    private static void newline(StringBuilder b, Integer indent, int level) {
        if (indent == null) return;
        b.append('\n');
        b.append(" ".repeat(indent * level));
    }

    private static void jsonString(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        b.append('"');
    }

    /** Python ==. */
    static boolean equal(Object a, Object b) {
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) return toDouble(a) == toDouble(b);
            return toLong(a) == toLong(b);
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) if (!equal(x.get(i), y.get(i))) return false;
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) return false;
            for (Map.Entry<?, ?> e : x.entrySet()) {
                if (!y.containsKey(e.getKey()) || !equal(e.getValue(), y.get(e.getKey()))) return false;
            }
            return true;
        }
        if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
        return Objects.equals(a, b);
    }

    /** Python ordering for <, <=, >, >=: numbers, strings (by code point), lists. */
    static int compare(Object a, Object b) {
        if (isNumber(a) && isNumber(b)) return Double.compare(toDouble(a), toDouble(b));
        if (a instanceof String x && b instanceof String y) return compareCodePoints(x, y);
        if (a instanceof List<?> x && b instanceof List<?> y) {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                if (!equal(x.get(i), y.get(i))) return compare(x.get(i), y.get(i));
            }
            return Integer.compare(x.size(), y.size());
        }
        throw new IllegalArgumentException("cannot order " + typeName(a) + " and " + typeName(b));
    }

    static int compareCodePoints(String x, String y) {
        int[] a = x.codePoints().toArray();
        int[] b = y.codePoints().toArray();
        for (int i = 0; i < Math.min(a.length, b.length); i++) if (a[i] != b[i]) return Integer.compare(a[i], b[i]);
        return Integer.compare(a.length, b.length);
    }

    /** Python `in`: substring, list membership, dict key. */
    static boolean contains(Object container, Object item) {
        if (container instanceof String s) {
            if (!(item instanceof String sub)) {
                throw new IllegalArgumentException("'in <string>' requires a string as left operand, not "
                        + typeName(item));
            }
            return s.contains(sub);
        }
        if (container instanceof List<?> list) {
            for (Object o : list) if (equal(o, item)) return true;
            return false;
        }
        if (container instanceof Map<?, ?> map) {
            for (Object k : map.keySet()) if (equal(k, item)) return true;
            return false;
        }
        if (container instanceof Namespace ns) return ns.attributes.containsKey(item);
        if (container instanceof Undefined) return false;
        throw new IllegalArgumentException("argument of type " + typeName(container) + " is not iterable");
    }

    static long length(Object v) {
        if (v instanceof String s) return s.codePointCount(0, s.length());
        if (v instanceof Collection<?> c) return c.size();
        if (v instanceof Map<?, ?> m) return m.size();
        if (v instanceof Undefined) return 0;
        throw new IllegalArgumentException("object of type " + typeName(v) + " has no len()");
    }

    /** The items a for loop visits: list elements, dict keys, string characters; nothing for undefined. */
    static List<Object> iterate(Object v) {
        if (v instanceof List<?> list) return new ArrayList<>(list);
        if (v instanceof Map<?, ?> map) return new ArrayList<>(map.keySet());
        if (v instanceof String s) {
            List<Object> chars = new ArrayList<>();
            s.codePoints().forEach(cp -> chars.add(new String(Character.toChars(cp))));
            return chars;
        }
        if (v instanceof Undefined) return new ArrayList<>();
        if (v instanceof Iterable<?> it) {
            List<Object> out = new ArrayList<>();
            for (Iterator<?> i = it.iterator(); i.hasNext();) out.add(i.next());
            return out;
        }
        throw new IllegalArgumentException("'" + typeName(v) + "' object is not iterable");
    }

    /** obj[key]: list/string index (negative from the end), dict key; missing gives Undefined. */
    static Object item(Object obj, Object key) {
        if (obj instanceof List<?> list && (key instanceof Long || key instanceof Boolean)) {
            long i = toLong(key);
            if (i < 0) i += list.size();
            return i >= 0 && i < list.size() ? list.get((int) i) : new Undefined("[" + key + "]");
        }
        if (obj instanceof String s && (key instanceof Long || key instanceof Boolean)) {
            int[] cps = s.codePoints().toArray();
            long i = toLong(key);
            if (i < 0) i += cps.length;
            return i >= 0 && i < cps.length ? new String(Character.toChars(cps[(int) i])) : new Undefined("[" + key + "]");
        }
        if (obj instanceof Map<?, ?> map) {
            for (Map.Entry<?, ?> e : map.entrySet()) if (equal(e.getKey(), key)) return e.getValue();
            return new Undefined(str(key));
        }
        if (key instanceof String name) return attribute(obj, name);
        return new Undefined("[" + repr(key) + "]");
    }

    /** obj.name: a dict key, a namespace or loop attribute; missing gives Undefined. */
    static Object attribute(Object obj, String name) {
        if (obj instanceof Map<?, ?> map) {
            return map.containsKey(name) ? map.get(name) : new Undefined(name);
        }
        if (obj instanceof Namespace ns) {
            return ns.attributes.containsKey(name) ? ns.attributes.get(name) : new Undefined(name);
        }
        if (obj instanceof LoopInfo loop) return loop.get(name);
        return new Undefined(name);
    }

    /** Python slicing obj[start:stop:step] on lists and strings. */
    static Object slice(Object obj, Object start, Object stop, Object step) {
        List<Object> items;
        boolean string = obj instanceof String;
        if (obj instanceof String s) {
            items = iterate(s);
        } else if (obj instanceof List<?> list) {
            items = new ArrayList<>(list);
        } else {
            throw new IllegalArgumentException("'" + typeName(obj) + "' object is not subscriptable");
        }
        int n = items.size();
        long st = step == null ? 1 : toLong(step);
        if (st == 0) throw new IllegalArgumentException("slice step cannot be zero");
        long lo;
        long hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(toLong(start), n, 0, n);
            hi = stop == null ? n : clamp(toLong(stop), n, 0, n);
        } else {
            lo = start == null ? n - 1 : clamp(toLong(start), n, -1, n - 1);
            hi = stop == null ? -1 : clamp(toLong(stop), n, -1, n - 1);
        }
        List<Object> out = new ArrayList<>();
        if (st > 0) {
            for (long i = lo; i < hi; i += st) out.add(items.get((int) i));
        } else {
            for (long i = lo; i > hi; i += st) out.add(items.get((int) i));
        }
        if (!string) return out;
        StringBuilder b = new StringBuilder();
        for (Object o : out) b.append((String) o);
        return b.toString();
    }

    private static long clamp(long i, int n, long min, long max) {
        if (i < 0) i += n;
        return Math.max(min, Math.min(max, i));
    }
}
