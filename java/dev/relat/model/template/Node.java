package dev.relat.model.template;

import java.util.List;

/** The parsed template: statements and expressions, each with its source offset for errors. */
interface Node {
    /** A statement: produces output or changes variables. */
    interface Stmt extends Node {}

    /** An expression: evaluates to a value. */
    interface Expr extends Node {
        int at();
    }

    record Text(String text) implements Stmt {}

    record Output(Expr expr) implements Stmt {}

    record Branch(Expr condition, List<Stmt> body) {}

    record If(List<Branch> branches, List<Stmt> otherwise) implements Stmt {}

    record For(List<String> targets, Expr iterable, Expr filter, List<Stmt> body, List<Stmt> otherwise, int at)
            implements Stmt {}

    /** set name = value, set ns.attr = value, set a, b = value. */
    record Set(Expr target, Expr value, int at) implements Stmt {}

    /** {% set name %}...{% endset %}: captures the rendered body. */
    record SetBlock(String name, List<Stmt> body, int at) implements Stmt {}

    record Macro(String name, List<String> params, List<Expr> defaults, List<Stmt> body, int at) implements Stmt {}

    record Break(int at) implements Stmt {}

    record Continue(int at) implements Stmt {}

    record Literal(Object value, int at) implements Expr {}

    record Name(String name, int at) implements Expr {}

    record ListExpr(List<Expr> items, int at) implements Expr {}

    record TupleExpr(List<Expr> items, int at) implements Expr {}

    record DictExpr(List<Expr> keys, List<Expr> values, int at) implements Expr {}

    record Attr(Expr object, String name, int at) implements Expr {}

    record Item(Expr object, Expr key, int at) implements Expr {}

    record Slice(Expr object, Expr start, Expr stop, Expr step, int at) implements Expr {}

    record Call(Expr callee, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int at) implements Expr {}

    record Filter(Expr value, String name, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int at)
            implements Expr {}

    record Test(Expr value, String name, List<Expr> args, boolean negated, int at) implements Expr {}

    record Unary(String op, Expr operand, int at) implements Expr {}

    record Binary(String op, Expr left, Expr right, int at) implements Expr {}

    /** Chained comparison a op1 b op2 c (Python semantics). */
    record Compare(Expr first, List<String> ops, List<Expr> rest, int at) implements Expr {}

    record And(Expr left, Expr right, int at) implements Expr {}

    record Or(Expr left, Expr right, int at) implements Expr {}

    record Not(Expr operand, int at) implements Expr {}

    record Conditional(Expr condition, Expr then, Expr otherwise, int at) implements Expr {}
}
