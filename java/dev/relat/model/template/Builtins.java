package dev.relat.model.template;

import static dev.relat.model.template.Values.*;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The filters, tests, methods and global functions chat templates use, with Jinja2 / Python
 * semantics and Hugging Face's additions (tojson without HTML escaping, raise_exception,
 * strftime_now). A builtin that is asked for but missing is an error naming it.
 */
final class Builtins {
    private Builtins() {}

    /** Returned by {@link #method} when the object has no such method. */
    static final Object NO_METHOD = new Object();

    /** raise_exception(message) from a template. */
    static final class Raised extends RuntimeException {
        Raised(String message) {
            super(message, null, false, false);
        }
    }

    // ---- filters ----

    static Object filter(String name, Object v, List<Object> args, Map<String, Object> kw) {
        return switch (name) {
            case "abs" -> v instanceof Long l ? (Object) Math.abs(l) : (Object) Math.abs(toDouble(v));
            case "attr" -> attribute(v, str(arg(args, kw, 0, "name", null)));
            case "capitalize" -> capitalize(str(v));
            case "count", "length" -> length(v);
            case "d", "default" -> {
                Object fallback = arg(args, kw, 0, "default_value", "");
                boolean bool = truthy(arg(args, kw, 1, "boolean", false));
                yield (v instanceof Undefined || (bool && !truthy(v))) ? fallback : v;
            }
            case "e", "escape" -> escape(str(v));
            case "first" -> {
                List<Object> items = iterate(v);
                yield items.isEmpty() ? new Undefined("first") : items.get(0);
            }
            case "last" -> {
                List<Object> items = iterate(v);
                yield items.isEmpty() ? new Undefined("last") : items.get(items.size() - 1);
            }
            case "float" -> toFloat(v, arg(args, kw, 0, "default", 0.0));
            case "format" -> format(str(v), args);
            case "indent" -> indent(str(v), arg(args, kw, 0, "width", 4L), truthy(arg(args, kw, 1, "first", false)),
                    truthy(arg(args, kw, 2, "blank", false)));
            case "int" -> toInt(v, arg(args, kw, 0, "default", 0L));
            case "items" -> {
                List<Object> out = new ArrayList<>();
                if (v instanceof Map<?, ?> m) m.forEach((k, x) -> out.add(new Tuple(k, x)));
                else if (!(v instanceof Undefined)) throw new IllegalArgumentException("items: expected a mapping, got "
                        + typeName(v));
                yield out;
            }
            case "join" -> {
                String sep = str(arg(args, kw, 0, "d", ""));
                Object attribute = arg(args, kw, 1, "attribute", null);
                StringBuilder b = new StringBuilder();
                boolean first = true;
                for (Object o : iterate(v)) {
                    if (!first) b.append(sep);
                    first = false;
                    b.append(str(attribute == null ? o : attribute(o, str(attribute))));
                }
                yield b.toString();
            }
            case "list" -> iterate(v);
            case "lower" -> str(v).toLowerCase(Locale.ROOT);
            case "upper" -> str(v).toUpperCase(Locale.ROOT);
            case "map" -> {
                List<Object> out = new ArrayList<>();
                if (kw.containsKey("attribute")) {
                    Object fallback = kw.get("default");
                    for (Object o : iterate(v)) {
                        Object x = attribute(o, str(kw.get("attribute")));
                        out.add(x instanceof Undefined && fallback != null ? fallback : x);
                    }
                } else {
                    if (args.isEmpty()) throw new IllegalArgumentException("map: needs a filter name or attribute=");
                    String f = str(args.get(0));
                    List<Object> rest = args.subList(1, args.size());
                    for (Object o : iterate(v)) out.add(filter(f, o, rest, Map.of()));
                }
                yield out;
            }
            case "max", "min" -> {
                List<Object> items = iterate(v);
                if (items.isEmpty()) yield new Undefined(name);
                Object best = items.get(0);
                for (Object o : items) {
                    int c = compare(o, best);
                    if (name.equals("max") ? c > 0 : c < 0) best = o;
                }
                yield best;
            }
            case "replace" -> {
                String s = str(v);
                String old = str(arg(args, kw, 0, "old", null));
                String replacement = str(arg(args, kw, 1, "new", null));
                Object count = arg(args, kw, 2, "count", null);
                yield replace(s, old, replacement, count == null ? -1 : toLong(count));
            }
            case "reverse" -> {
                if (v instanceof String s) yield new StringBuilder(s).reverse().toString();
                List<Object> items = iterate(v);
                java.util.Collections.reverse(items);
                yield items;
            }
            case "round" -> {
                long precision = toLong(arg(args, kw, 0, "precision", 0L));
                String method = str(arg(args, kw, 1, "method", "common"));
                RoundingMode mode = switch (method) {
                    case "common" -> RoundingMode.HALF_EVEN;
                    case "ceil" -> RoundingMode.CEILING;
                    case "floor" -> RoundingMode.FLOOR;
                    default -> throw new IllegalArgumentException("round: method must be common, ceil or floor");
                };
                yield BigDecimal.valueOf(toDouble(v)).setScale((int) precision, mode).doubleValue();
            }
            case "safe" -> v;
            case "select", "reject" -> selectBy(v, args, name.equals("select"), null);
            case "selectattr", "rejectattr" -> {
                if (args.isEmpty()) throw new IllegalArgumentException(name + ": needs an attribute name");
                yield selectBy(v, args.subList(1, args.size()), name.equals("selectattr"), str(args.get(0)));
            }
            case "sort" -> {
                List<Object> items = iterate(v);
                boolean reverse = truthy(arg(args, kw, 0, "reverse", false));
                Object attribute = arg(args, kw, 2, "attribute", null);
                items.sort((a, b) -> {
                    Object x = attribute == null ? a : attribute(a, str(attribute));
                    Object y = attribute == null ? b : attribute(b, str(attribute));
                    if (x instanceof String sx && y instanceof String sy) {
                        return compareCodePoints(sx.toLowerCase(Locale.ROOT), sy.toLowerCase(Locale.ROOT));
                    }
                    return compare(x, y);
                });
                if (reverse) java.util.Collections.reverse(items);
                yield items;
            }
            case "string" -> str(v);
            case "sum" -> {
                Object attribute = arg(args, kw, 0, "attribute", null);
                Object total = arg(args, kw, 1, "start", 0L);
                for (Object o : iterate(v)) total = add(total, attribute == null ? o : attribute(o, str(attribute)));
                yield total;
            }
            case "title" -> title(str(v));
            case "tojson" -> {
                Object indent = arg(args, kw, 0, "indent", null);
                if (truthy(kw.get("ensure_ascii"))) throw new IllegalArgumentException("tojson: ensure_ascii=True is"
                        + " not supported");
                yield toJson(v, indent == null ? null : (int) toLong(indent), truthy(kw.get("sort_keys")));
            }
            case "trim" -> strip(str(v), arg(args, kw, 0, "chars", null), true, true);
            case "unique" -> {
                List<Object> out = new ArrayList<>();
                for (Object o : iterate(v)) {
                    boolean seen = false;
                    for (Object x : out) if (equal(x, o)) seen = true;
                    if (!seen) out.add(o);
                }
                yield out;
            }
            case "wordcount" -> (long) str(v).trim().split("\\s+").length;
            default -> throw new IllegalArgumentException("unknown filter '" + name + "'");
        };
    }

    private static List<Object> selectBy(Object v, List<Object> args, boolean keep, String attribute) {
        List<Object> out = new ArrayList<>();
        String testName = args.isEmpty() ? null : str(args.get(0));
        List<Object> testArgs = args.isEmpty() ? List.of() : args.subList(1, args.size());
        for (Object o : iterate(v)) {
            Object x = attribute == null ? o : attribute(o, attribute);
            boolean pass = testName == null ? truthy(x) : test(testName, x, testArgs);
            if (pass == keep) out.add(o);
        }
        return out;
    }

    /** Positional argument i, else keyword name, else the default. */
    static Object arg(List<Object> args, Map<String, Object> kw, int i, String name, Object fallback) {
        if (i < args.size()) return args.get(i);
        if (kw.containsKey(name)) return kw.get(name);
        if (fallback == null && name != null && (name.equals("name") || name.equals("old") || name.equals("new"))) {
            throw new IllegalArgumentException("missing argument '" + name + "'");
        }
        return fallback;
    }

    // ---- tests ----

    static boolean test(String name, Object v, List<Object> args) {
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "number" -> v instanceof Long || v instanceof Double || v instanceof Boolean;
            case "string" -> v instanceof String;
            case "mapping" -> v instanceof Map || v instanceof Namespace;
            case "iterable" -> v instanceof List || v instanceof Map || v instanceof String;
            case "sequence" -> v instanceof List || v instanceof Map || v instanceof String;
            case "callable" -> v instanceof Callable;
            case "odd" -> toLong(v) % 2 != 0;
            case "even" -> toLong(v) % 2 == 0;
            case "divisibleby" -> toLong(v) % toLong(one(name, args)) == 0;
            case "eq", "equalto", "==" -> equal(v, one(name, args));
            case "ne", "!=" -> !equal(v, one(name, args));
            case "lt", "lessthan", "<" -> compare(v, one(name, args)) < 0;
            case "le", "<=" -> compare(v, one(name, args)) <= 0;
            case "gt", "greaterthan", ">" -> compare(v, one(name, args)) > 0;
            case "ge", ">=" -> compare(v, one(name, args)) >= 0;
            case "in" -> contains(one(name, args), v);
            case "sameas" -> v == one(name, args) || (v != null && v.equals(one(name, args)) && v instanceof Boolean);
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw new IllegalArgumentException("unknown test '" + name + "'");
        };
    }

    private static Object one(String test, List<Object> args) {
        if (args.size() != 1) throw new IllegalArgumentException("test '" + test + "' takes one argument");
        return args.get(0);
    }

    // ---- methods ----

    /** obj.name(args) for the str, dict and loop methods templates call; NO_METHOD when there is none. */
    static Object method(Object obj, String name, List<Object> args, Map<String, Object> kw) {
        if (obj instanceof String s) {
            return switch (name) {
                case "startswith", "endswith" -> {
                    Object p = arg(args, kw, 0, "prefix", "");
                    List<Object> options = p instanceof List<?> list ? new ArrayList<>(list) : List.of(p);
                    boolean hit = false;
                    for (Object o : options) {
                        if (!(o instanceof String x)) throw new IllegalArgumentException(name + ": expected a string");
                        hit |= name.equals("startswith") ? s.startsWith(x) : s.endsWith(x);
                    }
                    yield hit;
                }
                case "split" -> split(s, arg(args, kw, 0, "sep", null), toLong(arg(args, kw, 1, "maxsplit", -1L)));
                case "rsplit" -> rsplit(s, arg(args, kw, 0, "sep", null), toLong(arg(args, kw, 1, "maxsplit", -1L)));
                case "strip" -> strip(s, arg(args, kw, 0, "chars", null), true, true);
                case "lstrip" -> strip(s, arg(args, kw, 0, "chars", null), true, false);
                case "rstrip" -> strip(s, arg(args, kw, 0, "chars", null), false, true);
                case "upper" -> s.toUpperCase(Locale.ROOT);
                case "lower" -> s.toLowerCase(Locale.ROOT);
                case "title" -> title(s);
                case "capitalize" -> capitalize(s);
                case "replace" -> replace(s, str(arg(args, kw, 0, "old", null)), str(arg(args, kw, 1, "new", null)),
                        toLong(arg(args, kw, 2, "count", -1L)));
                case "find" -> (long) codePointIndex(s, s.indexOf(str(arg(args, kw, 0, "sub", ""))));
                case "count" -> {
                    String sub = str(arg(args, kw, 0, "sub", ""));
                    if (sub.isEmpty()) yield length(s) + 1;
                    long c = 0;
                    for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) c++;
                    yield c;
                }
                case "join" -> {
                    StringBuilder b = new StringBuilder();
                    boolean first = true;
                    for (Object o : iterate(arg(args, kw, 0, "iterable", List.of()))) {
                        if (!first) b.append(s);
                        first = false;
                        if (!(o instanceof String x)) throw new IllegalArgumentException("join: expected str, got "
                                + typeName(o));
                        b.append(x);
                    }
                    yield b.toString();
                }
                case "removeprefix" -> {
                    String p = str(arg(args, kw, 0, "prefix", ""));
                    yield s.startsWith(p) ? s.substring(p.length()) : s;
                }
                case "removesuffix" -> {
                    String p = str(arg(args, kw, 0, "suffix", ""));
                    yield s.endsWith(p) && !p.isEmpty() ? s.substring(0, s.length() - p.length()) : s;
                }
                case "isdigit" -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
                case "isalpha" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
                case "isspace" -> !s.isEmpty() && s.codePoints().allMatch(Builtins::isSpace);
                case "format" -> throw new IllegalArgumentException("str.format is not supported");
                default -> NO_METHOD;
            };
        }
        if (obj instanceof Map<?, ?> m) {
            return switch (name) {
                case "items" -> filter("items", m, List.of(), Map.of());
                case "keys" -> new ArrayList<Object>(m.keySet());
                case "values" -> new ArrayList<Object>(m.values());
                case "get" -> {
                    Object key = arg(args, kw, 0, "key", null);
                    Object x = item(m, key);
                    yield x instanceof Undefined ? arg(args, kw, 1, "default", null) : x;
                }
                default -> NO_METHOD;
            };
        }
        if (obj instanceof LoopInfo loop && name.equals("cycle")) {
            if (args.isEmpty()) throw new IllegalArgumentException("loop.cycle needs at least one argument");
            return args.get(loop.index0 % args.size());
        }
        return NO_METHOD;
    }

    // ---- globals ----

    static Map<String, Object> globals() {
        Map<String, Object> g = new LinkedHashMap<>();
        g.put("namespace", (Callable) (args, kw, at) -> {
            Namespace ns = new Namespace();
            for (Object a : args) {
                if (!(a instanceof Map<?, ?> m)) throw new IllegalArgumentException("namespace: positional arguments"
                        + " must be mappings");
                m.forEach((k, v) -> ns.attributes.put(str(k), v));
            }
            ns.attributes.putAll(kw);
            return ns;
        });
        g.put("range", (Callable) (args, kw, at) -> {
            long start = 0;
            long stop;
            long step = 1;
            if (args.size() == 1) {
                stop = toLong(args.get(0));
            } else if (args.size() == 2 || args.size() == 3) {
                start = toLong(args.get(0));
                stop = toLong(args.get(1));
                if (args.size() == 3) step = toLong(args.get(2));
            } else {
                throw new IllegalArgumentException("range expects 1 to 3 arguments");
            }
            if (step == 0) throw new IllegalArgumentException("range() arg 3 must not be zero");
            List<Object> out = new ArrayList<>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
                out.add(i);
                if (out.size() > 100_000) throw new IllegalArgumentException("range too large");
            }
            return out;
        });
        g.put("dict", (Callable) (args, kw, at) -> {
            Map<Object, Object> out = new LinkedHashMap<>();
            for (Object a : args) {
                if (a instanceof Map<?, ?> m) out.putAll(m);
                else throw new IllegalArgumentException("dict: positional arguments must be mappings");
            }
            out.putAll(kw);
            return out;
        });
        g.put("raise_exception", (Callable) (args, kw, at) -> {
            throw new Raised(args.isEmpty() ? "" : str(args.get(0)));
        });
        g.put("strftime_now", (Callable) (args, kw, at) -> strftime(ZonedDateTime.now(),
                str(arg(args, kw, 0, "format", "%Y-%m-%d"))));
        return g;
    }

    // ---- arithmetic shared with the interpreter ----

    static Object add(Object a, Object b) {
        if (a instanceof String x && b instanceof String y) return x + y;
        if (a instanceof List<?> x && b instanceof List<?> y) {
            List<Object> out = new ArrayList<>(x);
            out.addAll(y);
            return out;
        }
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) return toDouble(a) + toDouble(b);
            return Math.addExact(toLong(a), toLong(b));
        }
        throw new IllegalArgumentException("unsupported operand types for +: " + typeName(a) + " and " + typeName(b));
    }

    // ---- string helpers ----

    static boolean isSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp);
    }

    static String strip(String s, Object chars, boolean left, boolean right) {
        int[] cps = s.codePoints().toArray();
        java.util.function.IntPredicate drop;
        if (chars == null) {
            drop = Builtins::isSpace;
        } else {
            java.util.Set<Integer> set = new java.util.HashSet<>();
            str(chars).codePoints().forEach(set::add);
            drop = set::contains;
        }
        int lo = 0;
        int hi = cps.length;
        if (left) while (lo < hi && drop.test(cps[lo])) lo++;
        if (right) while (hi > lo && drop.test(cps[hi - 1])) hi--;
        return new String(cps, lo, hi - lo);
    }

    static List<Object> split(String s, Object sep, long maxsplit) {
        List<Object> out = new ArrayList<>();
        if (sep == null) {
            int[] cps = s.codePoints().toArray();
            int i = 0;
            while (i < cps.length) {
                while (i < cps.length && isSpace(cps[i])) i++;
                if (i >= cps.length) break;
                if (maxsplit >= 0 && out.size() == maxsplit) {
                    int end = cps.length;
                    while (end > i && isSpace(cps[end - 1])) end--;
                    out.add(new String(cps, i, end - i));
                    return out;
                }
                int j = i;
                while (j < cps.length && !isSpace(cps[j])) j++;
                out.add(new String(cps, i, j - i));
                i = j;
            }
            return out;
        }
        String sepStr = str(sep);
        if (sepStr.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0;
        while (maxsplit < 0 || out.size() < maxsplit) {
            int j = s.indexOf(sepStr, from);
            if (j < 0) break;
            out.add(s.substring(from, j));
            from = j + sepStr.length();
        }
        out.add(s.substring(from));
        return out;
    }

    static List<Object> rsplit(String s, Object sep, long maxsplit) {
        if (maxsplit < 0 || sep == null) return split(s, sep, maxsplit);
        String sepStr = str(sep);
        if (sepStr.isEmpty()) throw new IllegalArgumentException("empty separator");
        List<Object> out = new ArrayList<>();
        int end = s.length();
        while (out.size() < maxsplit) {
            int j = s.lastIndexOf(sepStr, end - sepStr.length());
            if (j < 0) break;
            out.add(0, s.substring(j + sepStr.length(), end));
            end = j;
        }
        out.add(0, s.substring(0, end));
        return out;
    }

    static String replace(String s, String old, String replacement, long count) {
        if (count < 0) return s.replace(old, replacement);
        StringBuilder b = new StringBuilder();
        int from = 0;
        long done = 0;
        while (done < count) {
            int j = s.indexOf(old, from);
            if (j < 0) break;
            b.append(s, from, j).append(replacement);
            from = j + old.length();
            done++;
            if (old.isEmpty()) {
                if (from < s.length()) b.append(s.charAt(from));
                from++;
                if (from > s.length()) break;
            }
        }
        if (from <= s.length()) b.append(s.substring(from));
        return b.toString();
    }

    private static long codePointIndex(String s, int charIndex) {
        return charIndex < 0 ? -1 : s.codePointCount(0, charIndex);
    }

    private static String capitalize(String s) {
        if (s.isEmpty()) return s;
        int first = s.codePointAt(0);
        int n = Character.charCount(first);
        return new String(Character.toChars(Character.toUpperCase(first))) + s.substring(n).toLowerCase(Locale.ROOT);
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder();
        boolean previousCased = false;
        for (int cp : s.codePoints().toArray()) {
            boolean letter = Character.isLetter(cp);
            b.appendCodePoint(letter ? (previousCased ? Character.toLowerCase(cp) : Character.toUpperCase(cp)) : cp);
            previousCased = letter;
        }
        return b.toString();
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&#34;")
                .replace("'", "&#39;");
    }

    private static Object toInt(Object v, Object fallback) {
        if (v instanceof Long || v instanceof Boolean) return toLong(v);
        if (v instanceof Double d) return (long) d.doubleValue();
        if (v instanceof String s) {
            try {
                return Long.parseLong(s.strip().replace("_", ""));
            } catch (NumberFormatException e) {
                try {
                    return (long) Double.parseDouble(s.strip());
                } catch (NumberFormatException e2) {
                    return fallback;
                }
            }
        }
        return fallback;
    }

    private static Object toFloat(Object v, Object fallback) {
        if (isNumber(v)) return toDouble(v);
        if (v instanceof String s) {
            try {
                return Double.parseDouble(s.strip());
            } catch (NumberFormatException e) {
                return fallback;
            }
        }
        return fallback;
    }

    private static String indent(String s, Object width, boolean first, boolean blank) {
        String pad = width instanceof String w ? w : " ".repeat((int) toLong(width));
        String[] lines = s.split("\n", -1);
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
            if (i > 0) b.append('\n');
            boolean indentThis = (i > 0 || first) && (blank || !lines[i].isBlank());
            if (indentThis) b.append(pad);
            b.append(lines[i]);
        }
        return b.toString();
    }

    /** printf-style "%s" / "%d" / "%%" formatting, the part templates use. */
    private static String format(String fmt, List<Object> args) {
        StringBuilder b = new StringBuilder();
        int next = 0;
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%' || i + 1 >= fmt.length()) {
                b.append(c);
                continue;
            }
            char k = fmt.charAt(++i);
            if (k == '%') {
                b.append('%');
                continue;
            }
            if (next >= args.size()) throw new IllegalArgumentException("format: not enough arguments");
            Object a = args.get(next++);
            switch (k) {
                case 's' -> b.append(str(a));
                case 'r' -> b.append(repr(a));
                case 'd', 'i' -> b.append(toLong(a));
                default -> throw new IllegalArgumentException("format: unsupported conversion %" + k);
            }
        }
        return b.toString();
    }

    /** The strftime directives date strings in chat templates use. */
    static String strftime(ZonedDateTime t, String fmt) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%' || i + 1 >= fmt.length()) {
                b.append(c);
                continue;
            }
            char k = fmt.charAt(++i);
            boolean noPad = false;
            if (k == '-' && i + 1 < fmt.length()) {
                noPad = true;
                k = fmt.charAt(++i);
            }
            String pattern = noPad ? "%d" : "%02d";
            switch (k) {
                case 'Y' -> b.append(t.getYear());
                case 'y' -> b.append(String.format("%02d", t.getYear() % 100));
                case 'm' -> b.append(String.format(pattern, t.getMonthValue()));
                case 'd' -> b.append(String.format(pattern, t.getDayOfMonth()));
                case 'H' -> b.append(String.format(pattern, t.getHour()));
                case 'M' -> b.append(String.format(pattern, t.getMinute()));
                case 'S' -> b.append(String.format(pattern, t.getSecond()));
                case 'b' -> b.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> b.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'j' -> b.append(String.format("%03d", t.getDayOfYear()));
                case '%' -> b.append('%');
                default -> throw new IllegalArgumentException("strftime_now: unsupported directive %" + k);
            }
        }
        return b.toString();
    }
}
