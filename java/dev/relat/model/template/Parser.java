package dev.relat.model.template;

import dev.relat.model.template.Node.*;
import dev.relat.model.template.Token.Kind;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/** Recursive-descent parser for the Jinja2 subset chat templates use, with Jinja2's precedence. */
final class Parser {
    private static final Set<String> COMPARE_OPS = Set.of("==", "!=", "<", "<=", ">", ">=");

    private final Source source;
    private final List<Token> tokens;
    private int pos;
    private String endTagFound;

    Parser(Source source, List<Token> tokens) {
        this.source = source;
        this.tokens = tokens;
    }

    /** Deeper than any real chat template; keeps a hostile one from exhausting the stack. */
    static final int MAX_DEPTH = 100;
    private int depth;

    /** Runs one level of a recursive rule, refusing to go deeper than MAX_DEPTH. */
    private <T> T nested(Supplier<T> level) {
        if (++depth > MAX_DEPTH) throw error(peek(), "nested deeper than " + MAX_DEPTH + " levels");
        try {
            return level.get();
        } finally {
            depth--;
        }
    }

    List<Stmt> parseTemplate() {
        List<Stmt> body = parseBody(Set.of());
        if (peek().kind() != Kind.EOF) throw error(peek(), "unexpected '" + peek().text() + "'");
        return body;
    }

    // ---- statements ----

    /** Parses statements until a block tag whose name is in endTags (consumed up to that name). */
    private List<Stmt> parseBody(Set<String> endTags) {
        return nested(() -> parseBodyLevel(endTags));
    }

    private List<Stmt> parseBodyLevel(Set<String> endTags) {
        List<Stmt> body = new ArrayList<>();
        while (true) {
            Token t = peek();
            switch (t.kind()) {
                case EOF -> {
                    if (!endTags.isEmpty()) {
                        throw error(t, "unexpected end of template, expected one of " + endTags);
                    }
                    return body;
                }
                case TEXT -> {
                    next();
                    body.add(new Text(t.text()));
                }
                case VAR_BEGIN -> {
                    next();
                    Expr e = parseTuple(true);
                    expect(Kind.VAR_END, "}}");
                    body.add(new Output(e));
                }
                case BLOCK_BEGIN -> {
                    Token name = tokens.get(pos + 1);
                    if (name.kind() == Kind.NAME && endTags.contains(name.text())) {
                        pos += 2;
                        endTagFound = name.text();
                        return body;
                    }
                    next();
                    body.add(parseStatement());
                }
                default -> throw error(t, "unexpected '" + t.text() + "'");
            }
        }
    }

    private Stmt parseStatement() {
        Token t = next();
        if (t.kind() != Kind.NAME) throw error(t, "expected a tag name, got '" + t.text() + "'");
        return switch (t.text()) {
            case "if" -> parseIf();
            case "for" -> parseFor(t);
            case "set" -> parseSet(t);
            case "macro" -> parseMacro(t);
            case "break" -> {
                expect(Kind.BLOCK_END, "%}");
                yield new Break(t.offset());
            }
            case "continue" -> {
                expect(Kind.BLOCK_END, "%}");
                yield new Continue(t.offset());
            }
            case "generation" -> {
                // Hugging Face's AssistantTracker extension: the body renders as usual.
                expect(Kind.BLOCK_END, "%}");
                List<Stmt> body = parseBody(Set.of("endgeneration"));
                expect(Kind.BLOCK_END, "%}");
                yield new If(List.of(new Branch(new Literal(true, t.offset()), body)), List.of());
            }
            default -> throw error(t, "unsupported or unknown tag '" + t.text() + "'");
        };
    }

    private Stmt parseIf() {
        List<Branch> branches = new ArrayList<>();
        List<Stmt> otherwise = List.of();
        Expr condition = parseTuple(true);
        expect(Kind.BLOCK_END, "%}");
        while (true) {
            List<Stmt> body = parseBody(Set.of("elif", "else", "endif"));
            branches.add(new Branch(condition, body));
            String tag = endTagFound;
            if (tag.equals("elif")) {
                condition = parseTuple(true);
                expect(Kind.BLOCK_END, "%}");
            } else if (tag.equals("else")) {
                expect(Kind.BLOCK_END, "%}");
                otherwise = parseBody(Set.of("endif"));
                expect(Kind.BLOCK_END, "%}");
                break;
            } else {
                expect(Kind.BLOCK_END, "%}");
                break;
            }
        }
        return new If(branches, otherwise);
    }

    private Stmt parseFor(Token at) {
        List<String> targets = new ArrayList<>();
        boolean paren = peek().isOp("(");
        if (paren) next();
        do {
            targets.add(expectName().text());
        } while (peek().isOp(",") && next() != null);
        if (paren) expect(Kind.OP, ")");
        Token in = next();
        if (!in.isName("in")) throw error(in, "expected 'in' in for loop, got '" + in.text() + "'");
        Expr iterable = parseTuple(false);
        Expr filter = null;
        if (peek().isName("if")) {
            next();
            filter = parseExpression(true);
        }
        if (peek().isName("recursive")) throw error(peek(), "recursive for loops are not supported");
        expect(Kind.BLOCK_END, "%}");
        List<Stmt> body = parseBody(Set.of("else", "endfor"));
        List<Stmt> otherwise = List.of();
        if (endTagFound.equals("else")) {
            expect(Kind.BLOCK_END, "%}");
            otherwise = parseBody(Set.of("endfor"));
        }
        expect(Kind.BLOCK_END, "%}");
        return new For(targets, iterable, filter, body, otherwise, at.offset());
    }

    private Stmt parseSet(Token at) {
        Token first = expectName();
        Expr target;
        if (peek().isOp(".")) {
            next();
            target = new Attr(new Name(first.text(), first.offset()), expectName().text(), first.offset());
        } else if (peek().isOp(",")) {
            List<Expr> names = new ArrayList<>();
            names.add(new Name(first.text(), first.offset()));
            while (peek().isOp(",")) {
                next();
                Token n = expectName();
                names.add(new Name(n.text(), n.offset()));
            }
            target = new TupleExpr(names, first.offset());
        } else {
            target = new Name(first.text(), first.offset());
        }
        if (peek().kind() == Kind.BLOCK_END) {
            if (!(target instanceof Name name)) throw error(at, "a set block takes a single name");
            next();
            List<Stmt> body = parseBody(Set.of("endset"));
            expect(Kind.BLOCK_END, "%}");
            return new SetBlock(name.name(), body, at.offset());
        }
        expect(Kind.OP, "=");
        Expr value = parseTuple(true);
        expect(Kind.BLOCK_END, "%}");
        return new Node.Set(target, value, at.offset());
    }

    private Stmt parseMacro(Token at) {
        String name = expectName().text();
        expect(Kind.OP, "(");
        List<String> params = new ArrayList<>();
        List<Expr> defaults = new ArrayList<>();
        while (!peek().isOp(")")) {
            if (!params.isEmpty()) expect(Kind.OP, ",");
            params.add(expectName().text());
            if (peek().isOp("=")) {
                next();
                defaults.add(parseExpression(true));
            } else {
                if (!defaults.isEmpty()) throw error(peek(), "non-default macro argument follows a default one");
                defaults.add(null);
            }
        }
        next();
        expect(Kind.BLOCK_END, "%}");
        List<Stmt> body = parseBody(Set.of("endmacro"));
        if (peek().kind() == Kind.NAME) next();
        expect(Kind.BLOCK_END, "%}");
        return new Macro(name, params, defaults, body, at.offset());
    }

    // ---- expressions ----

    /** An expression, or a tuple when commas separate several (as in {{ a, b }}). */
    private Expr parseTuple(boolean withConditional) {
        int at = peek().offset();
        Expr first = parseExpression(withConditional);
        if (!peek().isOp(",")) return first;
        List<Expr> items = new ArrayList<>();
        items.add(first);
        while (peek().isOp(",")) {
            next();
            if (endsTuple(peek())) break;
            items.add(parseExpression(withConditional));
        }
        return new TupleExpr(items, at);
    }

    private static boolean endsTuple(Token t) {
        return t.kind() == Kind.VAR_END || t.kind() == Kind.BLOCK_END || t.isOp(")") || t.isOp("]")
                || t.isOp("}") || t.kind() == Kind.EOF;
    }

    private Expr parseExpression(boolean withConditional) {
        return nested(() -> parseExpressionLevel(withConditional));
    }

    private Expr parseExpressionLevel(boolean withConditional) {
        if (!withConditional) return parseOr();
        Expr e = parseOr();
        while (peek().isName("if")) {
            int at = next().offset();
            Expr condition = parseOr();
            Expr otherwise = null;
            if (peek().isName("else")) {
                next();
                otherwise = parseExpression(true);
            }
            e = new Conditional(condition, e, otherwise, at);
        }
        return e;
    }

    private Expr parseOr() {
        Expr left = parseAnd();
        while (peek().isName("or")) {
            int at = next().offset();
            left = new Or(left, parseAnd(), at);
        }
        return left;
    }

    private Expr parseAnd() {
        Expr left = parseNot();
        while (peek().isName("and")) {
            int at = next().offset();
            left = new And(left, parseNot(), at);
        }
        return left;
    }

    private Expr parseNot() {
        return nested(() -> parseNotLevel());
    }

    private Expr parseNotLevel() {
        if (peek().isName("not")) {
            int at = next().offset();
            return new Not(parseNot(), at);
        }
        return parseCompare();
    }

    private Expr parseCompare() {
        int at = peek().offset();
        Expr first = parseMath1();
        List<String> ops = new ArrayList<>();
        List<Expr> rest = new ArrayList<>();
        while (true) {
            Token t = peek();
            if (t.kind() == Kind.OP && COMPARE_OPS.contains(t.text())) {
                next();
                ops.add(t.text());
            } else if (t.isName("in")) {
                next();
                ops.add("in");
            } else if (t.isName("not") && tokens.get(pos + 1).isName("in")) {
                pos += 2;
                ops.add("not in");
            } else {
                break;
            }
            rest.add(parseMath1());
        }
        return ops.isEmpty() ? first : new Compare(first, ops, rest, at);
    }

    private Expr parseMath1() {
        Expr left = parseConcat();
        while (peek().isOp("+") || peek().isOp("-")) {
            Token op = next();
            left = new Binary(op.text(), left, parseConcat(), op.offset());
        }
        return left;
    }

    private Expr parseConcat() {
        Expr left = parseMath2();
        while (peek().isOp("~")) {
            Token op = next();
            left = new Binary("~", left, parseMath2(), op.offset());
        }
        return left;
    }

    private Expr parseMath2() {
        Expr left = parsePow();
        while (peek().isOp("*") || peek().isOp("/") || peek().isOp("//") || peek().isOp("%")) {
            Token op = next();
            left = new Binary(op.text(), left, parsePow(), op.offset());
        }
        return left;
    }

    private Expr parsePow() {
        Expr left = parseUnary(true);
        while (peek().isOp("**")) {
            Token op = next();
            left = new Binary("**", left, parseUnary(true), op.offset());
        }
        return left;
    }

    private Expr parseUnary(boolean withFilter) {
        return nested(() -> parseUnaryLevel(withFilter));
    }

    private Expr parseUnaryLevel(boolean withFilter) {
        Token t = peek();
        Expr e;
        if (t.isOp("-") || t.isOp("+")) {
            next();
            e = new Unary(t.text(), parseUnary(false), t.offset());
        } else {
            e = parsePrimary();
        }
        e = parsePostfix(e);
        if (withFilter) e = parseFilterExpr(e);
        return e;
    }

    private Expr parsePrimary() {
        Token t = next();
        switch (t.kind()) {
            case NAME -> {
                return switch (t.text()) {
                    case "true", "True" -> new Literal(Boolean.TRUE, t.offset());
                    case "false", "False" -> new Literal(Boolean.FALSE, t.offset());
                    case "none", "None" -> new Literal(null, t.offset());
                    default -> new Name(t.text(), t.offset());
                };
            }
            case STRING -> {
                StringBuilder b = new StringBuilder(t.text());
                while (peek().kind() == Kind.STRING) b.append(next().text());
                return new Literal(b.toString(), t.offset());
            }
            case INT -> {
                return intLiteral(t);
            }
            case FLOAT -> {
                return new Literal(Double.parseDouble(t.text()), t.offset());
            }
            case OP -> {
                switch (t.text()) {
                    case "(" -> {
                        if (peek().isOp(")")) {
                            next();
                            return new TupleExpr(List.of(), t.offset());
                        }
                        Expr inner = parseTuple(true);
                        expect(Kind.OP, ")");
                        return inner;
                    }
                    case "[" -> {
                        List<Expr> items = new ArrayList<>();
                        while (!peek().isOp("]")) {
                            if (!items.isEmpty()) {
                                expect(Kind.OP, ",");
                                if (peek().isOp("]")) break;
                            }
                            items.add(parseExpression(true));
                        }
                        next();
                        return new ListExpr(items, t.offset());
                    }
                    case "{" -> {
                        List<Expr> keys = new ArrayList<>();
                        List<Expr> values = new ArrayList<>();
                        while (!peek().isOp("}")) {
                            if (!keys.isEmpty()) {
                                expect(Kind.OP, ",");
                                if (peek().isOp("}")) break;
                            }
                            keys.add(parseExpression(true));
                            expect(Kind.OP, ":");
                            values.add(parseExpression(true));
                        }
                        next();
                        return new DictExpr(keys, values, t.offset());
                    }
                    default -> { }
                }
            }
            default -> { }
        }
        throw error(t, "unexpected '" + (t.kind() == Kind.EOF ? "end of template" : t.text()) + "'");
    }

    private Expr parsePostfix(Expr e) {
        while (true) {
            Token t = peek();
            if (t.isOp(".") || t.isOp("[")) {
                e = parseSubscript(e);
            } else if (t.isOp("(")) {
                e = parseCall(e);
            } else {
                return e;
            }
        }
    }

    private Expr parseFilterExpr(Expr e) {
        while (true) {
            Token t = peek();
            if (t.isOp("|")) {
                e = parseFilter(e);
            } else if (t.isName("is")) {
                e = parseTest(e);
            } else if (t.isOp("(")) {
                e = parseCall(e);
            } else {
                return e;
            }
        }
    }

    private Literal intLiteral(Token t) {
        try {
            return new Literal(Long.parseLong(t.text()), t.offset());
        } catch (NumberFormatException e) {
            throw error(t, "integer literal out of range: " + t.text());
        }
    }

    private Expr parseSubscript(Expr e) {
        Token t = next();
        if (t.isOp(".")) {
            Token name = next();
            if (name.kind() == Kind.NAME) return new Attr(e, name.text(), name.offset());
            if (name.kind() == Kind.INT) return new Item(e, intLiteral(name), name.offset());
            throw error(name, "expected an attribute name after '.'");
        }
        // '[' : an index, a slice, or a tuple key
        Expr start = null;
        if (!peek().isOp(":")) {
            start = parseExpression(true);
            if (peek().isOp("]")) {
                next();
                return new Item(e, start, t.offset());
            }
            if (peek().isOp(",")) throw error(peek(), "tuple subscripts are not supported");
        }
        expect(Kind.OP, ":");
        Expr stop = null;
        Expr step = null;
        if (!peek().isOp("]") && !peek().isOp(":")) stop = parseExpression(true);
        if (peek().isOp(":")) {
            next();
            if (!peek().isOp("]")) step = parseExpression(true);
        }
        expect(Kind.OP, "]");
        return new Slice(e, start, stop, step, t.offset());
    }

    private Expr parseCall(Expr callee) {
        Token open = expect(Kind.OP, "(");
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        parseArgs(args, kwNames, kwValues);
        return new Call(callee, args, kwNames, kwValues, open.offset());
    }

    /** After '(' : positional and keyword arguments up to and including ')'. */
    private void parseArgs(List<Expr> args, List<String> kwNames, List<Expr> kwValues) {
        boolean first = true;
        while (!peek().isOp(")")) {
            if (!first) {
                expect(Kind.OP, ",");
                if (peek().isOp(")")) break;
            }
            first = false;
            if (peek().isOp("*") || peek().isOp("**")) throw error(peek(), "*args and **kwargs are not supported");
            if (peek().kind() == Kind.NAME && tokens.get(pos + 1).isOp("=")) {
                kwNames.add(next().text());
                next();
                kwValues.add(parseExpression(true));
            } else {
                if (!kwNames.isEmpty()) throw error(peek(), "positional argument follows keyword argument");
                args.add(parseExpression(true));
            }
        }
        next();
    }

    private Expr parseFilter(Expr value) {
        next(); // '|'
        Token name = expectName();
        String full = name.text();
        while (peek().isOp(".")) {
            next();
            full += "." + expectName().text();
        }
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        if (peek().isOp("(")) {
            next();
            parseArgs(args, kwNames, kwValues);
        }
        return new Filter(value, full, args, kwNames, kwValues, name.offset());
    }

    private Expr parseTest(Expr value) {
        next(); // 'is'
        boolean negated = false;
        if (peek().isName("not")) {
            next();
            negated = true;
        }
        Token name = next();
        String testName;
        if (name.kind() == Kind.NAME) {
            testName = name.text();
        } else if (name.kind() == Kind.OP && COMPARE_OPS.contains(name.text())) {
            testName = name.text();
        } else {
            throw error(name, "expected a test name after 'is'");
        }
        // 'none', 'true', 'false' are test names here, not literals
        List<Expr> args = new ArrayList<>();
        Token t = peek();
        if (t.isOp("(")) {
            next();
            List<String> kwNames = new ArrayList<>();
            parseArgs(args, kwNames, new ArrayList<>());
            if (!kwNames.isEmpty()) throw error(t, "keyword arguments to tests are not supported");
        } else if ((t.kind() == Kind.NAME && !Set.of("else", "or", "and", "if", "in", "not", "is").contains(t.text()))
                || t.kind() == Kind.STRING || t.kind() == Kind.INT || t.kind() == Kind.FLOAT
                || t.isOp("[") || t.isOp("{") || t.isOp("-")) {
            args.add(parsePostfix(parsePrimaryOrUnary()));
        }
        return new Test(value, testName, args, negated, name.offset());
    }

    private Expr parsePrimaryOrUnary() {
        if (peek().isOp("-")) {
            Token t = next();
            return new Unary("-", parsePrimary(), t.offset());
        }
        return parsePrimary();
    }

    // ---- tokens ----

    private Token peek() {
        return tokens.get(pos);
    }

    private Token next() {
        Token t = tokens.get(pos);
        if (t.kind() != Kind.EOF) pos++;
        return t;
    }

    private Token expect(Kind kind, String text) {
        Token t = peek();
        if (t.kind() != kind || (kind == Kind.OP && !t.text().equals(text))) {
            throw error(t, "expected '" + text + "', got '" + (t.kind() == Kind.EOF ? "end of template" : t.text())
                    + "'");
        }
        return next();
    }

    private Token expectName() {
        Token t = next();
        if (t.kind() != Kind.NAME) throw error(t, "expected a name, got '" + t.text() + "'");
        return t;
    }

    private TemplateException error(Token t, String message) {
        return source.error(t.offset(), message);
    }
}
