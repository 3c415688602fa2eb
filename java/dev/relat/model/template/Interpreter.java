package dev.relat.model.template;

import static dev.relat.model.template.Values.*;

import dev.relat.model.template.Node.*;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Walks the parsed template. Scoping follows Jinja2: a for loop body gets a fresh scope on every
 * iteration (its assignments do not leak out, which is why templates use namespace()), if blocks
 * share their enclosing scope, and a macro runs in a scope over the one it was defined in.
 */
final class Interpreter {
    private enum Flow { NORMAL, BREAK, CONTINUE }

    private static final class Scope {
        final Map<String, Object> vars = new HashMap<>();
        final Scope parent;

        Scope(Scope parent) {
            this.parent = parent;
        }

        boolean has(String name) {
            for (Scope s = this; s != null; s = s.parent) if (s.vars.containsKey(name)) return true;
            return false;
        }

        Object get(String name) {
            for (Scope s = this; s != null; s = s.parent) if (s.vars.containsKey(name)) return s.vars.get(name);
            return new Undefined(name);
        }
    }

    /**
     * Budgets of one render, far above what a real chat template needs (hundreds of steps and a
     * few kilobytes per message), so that a hostile template fails with a message instead of
     * hanging or exhausting the heap.
     */
    static final long MAX_STEPS = 10_000_000;
    static final int MAX_CHARS = 1 << 24;
    static final int MAX_ITEMS = 1 << 20;

    private final Source source;
    private int loopDepth;
    private int callDepth;
    private long steps;
    /** Offset of the expression evaluated last: where a statement without its own offset is. */
    private int lastAt;

    Interpreter(Source source) {
        this.source = source;
    }

    String render(List<Stmt> body, Map<String, Object> context) {
        Scope globals = new Scope(null);
        globals.vars.putAll(Builtins.globals());
        Scope root = new Scope(globals);
        root.vars.putAll(context);
        StringBuilder out = new StringBuilder();
        Flow flow = exec(body, root, out);
        if (flow != Flow.NORMAL) throw new IllegalStateException("break or continue outside a loop");
        return out.toString();
    }

    // ---- statements ----

    private Flow exec(List<Stmt> body, Scope scope, StringBuilder out) {
        for (Stmt st : body) {
            Flow flow = exec(st, scope, out);
            if (flow != Flow.NORMAL) return flow;
        }
        return Flow.NORMAL;
    }

    private Flow exec(Stmt st, Scope scope, StringBuilder out) {
        step(lastAt);
        if (st instanceof Text t) {
            append(out, t.text(), lastAt);
        } else if (st instanceof Output o) {
            append(out, str(eval(o.expr(), scope)), o.expr().at());
        } else if (st instanceof If i) {
            for (Branch b : i.branches()) {
                if (truthy(eval(b.condition(), scope))) return exec(b.body(), scope, out);
            }
            return exec(i.otherwise(), scope, out);
        } else if (st instanceof For f) {
            return execFor(f, scope, out);
        } else if (st instanceof Node.Set s) {
            assign(s.target(), eval(s.value(), scope), scope, s.at());
        } else if (st instanceof SetBlock s) {
            StringBuilder captured = new StringBuilder();
            exec(s.body(), scope, captured);
            scope.vars.put(s.name(), captured.toString());
        } else if (st instanceof Macro m) {
            scope.vars.put(m.name(), macro(m, scope));
        } else if (st instanceof Break b) {
            if (loopDepth == 0) throw source.error(b.at(), "'break' outside a for loop");
            return Flow.BREAK;
        } else if (st instanceof Continue c) {
            if (loopDepth == 0) throw source.error(c.at(), "'continue' outside a for loop");
            return Flow.CONTINUE;
        } else {
            throw new IllegalStateException("unknown statement " + st);
        }
        return Flow.NORMAL;
    }

    private Flow execFor(For f, Scope scope, StringBuilder out) {
        Object iterable = eval(f.iterable(), scope);
        List<Object> items;
        try {
            items = iterate(iterable);
        } catch (IllegalArgumentException e) {
            throw source.error(f.iterable().at(), e.getMessage());
        }
        if (f.filter() != null) {
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                Scope probe = new Scope(scope);
                bindTargets(f, item, probe);
                if (truthy(eval(f.filter(), probe))) kept.add(item);
            }
            items = kept;
        }
        if (items.isEmpty()) return exec(f.otherwise(), scope, out);
        LoopInfo loop = new LoopInfo(items, 1); // depth grows only in recursive loops, which are not supported
        loopDepth++;
        try {
            for (int i = 0; i < items.size(); i++) {
                step(f.at());
                loop.index0 = i;
                Scope body = new Scope(scope);
                bindTargets(f, items.get(i), body);
                body.vars.put("loop", loop);
                if (exec(f.body(), body, out) == Flow.BREAK) break;
            }
        } finally {
            loopDepth--;
        }
        return Flow.NORMAL;
    }

    private void bindTargets(For f, Object item, Scope scope) {
        List<String> targets = f.targets();
        if (targets.size() == 1) {
            scope.vars.put(targets.get(0), item);
            return;
        }
        List<Object> parts = unpack(item, targets.size(), f.at());
        for (int i = 0; i < targets.size(); i++) scope.vars.put(targets.get(i), parts.get(i));
    }

    private List<Object> unpack(Object value, int n, int at) {
        List<Object> parts;
        try {
            parts = iterate(value);
        } catch (IllegalArgumentException e) {
            throw source.error(at, "cannot unpack " + typeName(value));
        }
        if (parts.size() != n) {
            throw source.error(at, "cannot unpack " + parts.size() + " values into " + n + " names");
        }
        return parts;
    }

    private void assign(Expr target, Object value, Scope scope, int at) {
        if (target instanceof Name n) {
            scope.vars.put(n.name(), value);
        } else if (target instanceof Attr a && a.object() instanceof Name owner) {
            Object ns = scope.get(owner.name());
            if (!(ns instanceof Namespace namespace)) {
                throw source.error(at, "cannot assign attribute '" + a.name() + "' on '" + owner.name()
                        + "' (a " + typeName(ns) + "); only namespace() objects take attribute assignment");
            }
            namespace.attributes.put(a.name(), value);
        } else if (target instanceof TupleExpr t) {
            List<Object> parts = unpack(value, t.items().size(), at);
            for (int i = 0; i < parts.size(); i++) assign(t.items().get(i), parts.get(i), scope, at);
        } else {
            throw source.error(at, "cannot assign to this expression");
        }
    }

    private Callable macro(Macro m, Scope definedIn) {
        return (args, kw, at) -> {
            if (args.size() > m.params().size()) {
                throw source.error(at, "macro '" + m.name() + "' takes " + m.params().size() + " arguments, got "
                        + args.size());
            }
            if (++callDepth > 200) throw source.error(at, "macro recursion too deep");
            try {
                Scope scope = new Scope(definedIn);
                for (int i = 0; i < m.params().size(); i++) {
                    String p = m.params().get(i);
                    Object v;
                    if (i < args.size()) v = args.get(i);
                    else if (kw.containsKey(p)) v = kw.get(p);
                    else if (m.defaults().get(i) != null) v = eval(m.defaults().get(i), scope);
                    else v = new Undefined(p);
                    scope.vars.put(p, v);
                }
                for (String k : kw.keySet()) {
                    if (!m.params().contains(k)) {
                        throw source.error(at, "macro '" + m.name() + "' has no argument '" + k + "'");
                    }
                }
                StringBuilder out = new StringBuilder();
                int savedDepth = loopDepth;
                loopDepth = 0;
                try {
                    exec(m.body(), scope, out);
                } finally {
                    loopDepth = savedDepth;
                }
                return out.toString();
            } finally {
                callDepth--;
            }
        };
    }

    // ---- expressions ----

    private void step(int at) {
        if (++steps > MAX_STEPS) {
            throw source.error(at, "the template ran more than " + MAX_STEPS + " steps (a loop without end?)");
        }
    }

    private void append(StringBuilder out, String text, int at) {
        if ((long) out.length() + text.length() > MAX_CHARS) {
            throw source.error(at, "the output would exceed " + MAX_CHARS + " characters");
        }
        out.append(text);
    }

    /** Values too large to be what a chat template means are refused where they are made. */
    private Object bounded(Object value, int at) {
        if (value instanceof String s && s.length() > MAX_CHARS) {
            throw source.error(at, "a string of " + s.length() + " characters exceeds the limit of " + MAX_CHARS);
        }
        if (value instanceof List<?> l && l.size() > MAX_ITEMS) {
            throw source.error(at, "a list of " + l.size() + " items exceeds the limit of " + MAX_ITEMS);
        }
        return value;
    }

    private Object eval(Expr e, Scope scope) {
        lastAt = e.at();
        step(e.at());
        try {
            return bounded(evalUnchecked(e, scope), e.at());
        } catch (TemplateException ex) {
            throw ex;
        } catch (Builtins.Raised ex) {
            throw source.error(e.at(), "raise_exception: " + ex.getMessage());
        } catch (IllegalArgumentException | ArithmeticException | IndexOutOfBoundsException ex) {
            throw source.error(e.at(), ex.getMessage());
        }
    }

    private Object evalUnchecked(Expr e, Scope scope) {
        if (e instanceof Literal l) return l.value();
        if (e instanceof Name n) return scope.get(n.name());
        if (e instanceof ListExpr l) {
            List<Object> out = new ArrayList<>();
            for (Expr x : l.items()) out.add(eval(x, scope));
            return out;
        }
        if (e instanceof TupleExpr t) {
            Object[] out = new Object[t.items().size()];
            for (int i = 0; i < out.length; i++) out[i] = eval(t.items().get(i), scope);
            return new Tuple(out);
        }
        if (e instanceof DictExpr d) {
            Map<Object, Object> out = new LinkedHashMap<>();
            for (int i = 0; i < d.keys().size(); i++) out.put(eval(d.keys().get(i), scope), eval(d.values().get(i), scope));
            return out;
        }
        if (e instanceof Attr a) {
            Object obj = eval(a.object(), scope);
            if (obj instanceof Undefined u) {
                throw new IllegalArgumentException("'" + u.name + "' is undefined (reading its attribute '"
                        + a.name() + "')");
            }
            return attribute(obj, a.name());
        }
        if (e instanceof Item i) {
            Object obj = eval(i.object(), scope);
            Object key = eval(i.key(), scope);
            if (obj instanceof Undefined u) {
                throw new IllegalArgumentException("'" + u.name + "' is undefined (reading item " + repr(key) + ")");
            }
            return item(obj, key);
        }
        if (e instanceof Slice s) {
            Object obj = eval(s.object(), scope);
            return slice(obj, optional(s.start(), scope), optional(s.stop(), scope), optional(s.step(), scope));
        }
        if (e instanceof Call c) return call(c, scope);
        if (e instanceof Filter f) {
            Object value = eval(f.value(), scope);
            List<Object> args = evalAll(f.args(), scope);
            return Builtins.filter(f.name(), value, args, kwargs(f.kwNames(), f.kwValues(), scope));
        }
        if (e instanceof Test t) {
            boolean result = Builtins.test(t.name(), eval(t.value(), scope), evalAll(t.args(), scope));
            return result != t.negated();
        }
        if (e instanceof Unary u) {
            Object v = eval(u.operand(), scope);
            if (!isNumber(v)) throw new IllegalArgumentException("bad operand type for unary " + u.op() + ": "
                    + typeName(v));
            if (u.op().equals("+")) return v instanceof Boolean ? toLong(v) : v;
            return v instanceof Double d ? (Object) (-d) : (Object) Math.negateExact(toLong(v));
        }
        if (e instanceof Binary b) return binary(b.op(), eval(b.left(), scope), eval(b.right(), scope));
        if (e instanceof Compare c) {
            Object left = eval(c.first(), scope);
            for (int i = 0; i < c.ops().size(); i++) {
                Object right = eval(c.rest().get(i), scope);
                if (!compare(c.ops().get(i), left, right)) return false;
                left = right;
            }
            return true;
        }
        if (e instanceof And a) {
            Object left = eval(a.left(), scope);
            return truthy(left) ? eval(a.right(), scope) : left;
        }
        if (e instanceof Or o) {
            Object left = eval(o.left(), scope);
            return truthy(left) ? left : eval(o.right(), scope);
        }
        if (e instanceof Not n) return !truthy(eval(n.operand(), scope));
        if (e instanceof Conditional c) {
            if (truthy(eval(c.condition(), scope))) return eval(c.then(), scope);
            return c.otherwise() == null ? new Undefined("conditional") : eval(c.otherwise(), scope);
        }
        throw new IllegalStateException("unknown expression " + e);
    }

    private Object optional(Expr e, Scope scope) {
        if (e == null) return null;
        Object v = eval(e, scope);
        return v instanceof Undefined ? null : v;
    }

    private List<Object> evalAll(List<Expr> exprs, Scope scope) {
        List<Object> out = new ArrayList<>();
        for (Expr x : exprs) out.add(eval(x, scope));
        return out;
    }

    private Map<String, Object> kwargs(List<String> names, List<Expr> values, Scope scope) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) out.put(names.get(i), eval(values.get(i), scope));
        return out;
    }

    private Object call(Call c, Scope scope) {
        List<Object> args = evalAll(c.args(), scope);
        Map<String, Object> kw = kwargs(c.kwNames(), c.kwValues(), scope);
        if (c.callee() instanceof Attr a) {
            Object obj = eval(a.object(), scope);
            if (obj instanceof Undefined u) {
                throw new IllegalArgumentException("'" + u.name + "' is undefined (calling its method '" + a.name()
                        + "')");
            }
            Object result = Builtins.method(obj, a.name(), args, kw);
            if (result != Builtins.NO_METHOD) return result;
            Object f = attribute(obj, a.name());
            if (f instanceof Callable callable) return callable.call(args, kw, c.at());
            throw new IllegalArgumentException("'" + typeName(obj) + "' object has no method '" + a.name() + "'");
        }
        Object f = eval(c.callee(), scope);
        if (f instanceof Callable callable) return callable.call(args, kw, c.at());
        if (f instanceof Undefined u) throw new IllegalArgumentException("'" + u.name + "' is undefined (called as a"
                + " function)");
        throw new IllegalArgumentException("'" + typeName(f) + "' object is not callable");
    }

    private static boolean compare(String op, Object a, Object b) {
        return switch (op) {
            case "==" -> equal(a, b);
            case "!=" -> !equal(a, b);
            case "<" -> Values.compare(a, b) < 0;
            case "<=" -> Values.compare(a, b) <= 0;
            case ">" -> Values.compare(a, b) > 0;
            case ">=" -> Values.compare(a, b) >= 0;
            case "in" -> contains(b, a);
            case "not in" -> !contains(b, a);
            default -> throw new IllegalStateException(op);
        };
    }

    private static Object binary(String op, Object a, Object b) {
        if (op.equals("~")) return str(a) + str(b);
        if (a instanceof Undefined u) throw new IllegalArgumentException("'" + u.name + "' is undefined");
        if (b instanceof Undefined u) throw new IllegalArgumentException("'" + u.name + "' is undefined");
        switch (op) {
            case "+":
                return Builtins.add(a, b);
            case "*":
                if (a instanceof String s && (b instanceof Long || b instanceof Boolean)) {
                    long n = Math.max(0, toLong(b));
                    if (n > 0 && s.length() > MAX_CHARS / n) {
                        throw new IllegalArgumentException("a string of " + s.length() + " characters repeated " + n
                                + " times exceeds the limit of " + MAX_CHARS);
                    }
                    return s.repeat((int) n);
                }
                if (a instanceof List<?> l && (b instanceof Long || b instanceof Boolean)) {
                    long n = Math.max(0, toLong(b));
                    if (n > 0 && l.size() > MAX_ITEMS / n) {
                        throw new IllegalArgumentException("a list of " + l.size() + " items repeated " + n
                                + " times exceeds the limit of " + MAX_ITEMS);
                    }
                    List<Object> out = new ArrayList<>();
                    for (long i = 0; i < toLong(b); i++) out.addAll(l);
                    return out;
                }
                break;
            default:
                break;
        }
        if (!isNumber(a) || !isNumber(b)) {
            throw new IllegalArgumentException("unsupported operand types for " + op + ": " + typeName(a) + " and "
                    + typeName(b));
        }
        boolean floating = a instanceof Double || b instanceof Double;
        switch (op) {
            case "-":
                return floating ? (Object) (toDouble(a) - toDouble(b)) : (Object) Math.subtractExact(toLong(a), toLong(b));
            case "*":
                return floating ? (Object) (toDouble(a) * toDouble(b)) : (Object) Math.multiplyExact(toLong(a), toLong(b));
            case "/":
                if (toDouble(b) == 0) throw new ArithmeticException("division by zero");
                return toDouble(a) / toDouble(b);
            case "//":
                if (toDouble(b) == 0) throw new ArithmeticException("integer division or modulo by zero");
                return floating ? (Object) Math.floor(toDouble(a) / toDouble(b))
                        : (Object) Math.floorDiv(toLong(a), toLong(b));
            case "%":
                if (toDouble(b) == 0) throw new ArithmeticException("integer division or modulo by zero");
                if (floating) {
                    double x = toDouble(a);
                    double y = toDouble(b);
                    double r = x % y;
                    return (r != 0 && (r < 0) != (y < 0)) ? r + y : r;
                }
                return Math.floorMod(toLong(a), toLong(b));
            case "**":
                if (!floating && toLong(b) >= 0) {
                    long result = 1;
                    for (long i = 0; i < toLong(b); i++) result = Math.multiplyExact(result, toLong(a));
                    return result;
                }
                return Math.pow(toDouble(a), toDouble(b));
            default:
                throw new IllegalStateException(op);
        }
    }
}
