package dev.relat.model.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The Jinja interpreter on the constructs chat templates use. Expected strings are what Python's
 * Jinja2 3.1 renders with trim_blocks=True, lstrip_blocks=True (Hugging Face's settings).
 */
class TemplateTest {
    static String render(String template, Map<String, ?> vars) {
        return Template.compile(template).render(vars);
    }

    static String render(String template) {
        return render(template, Map.of());
    }

    @Test
    void whitespaceControlTrimAndLstripBlocks() {
        assertEquals("  a  1  b", render("  {% if true %}\n  a\n  {%- endif %}\n  {{ 1 }}  {% if true %}b{% endif %}\n"));
        assertEquals("x\ny\n", render("x\n    {% if true %}\ny\n    {% endif %}\n"));
        assertEquals("ab", render("a   {%- if true -%}   \n\n b{% endif %}"));
        assertEquals("a\n  k", render("a\n  {%+ if true %}k{% endif %}"));
        assertEquals("z", render("{# comment #}\nz\n"));
        assertEquals("1\n2", render("{{ 1 }}\n{{ 2 }}\n"), "one trailing newline is dropped; {{ }} keeps its newline");
        assertEquals("a\r\nb".replace("\r\n", "\n"), render("a\r\nb"));
    }

    @Test
    void loopsWithLoopVariablesFilterElseBreakContinue() {
        assertEquals("0:1F 1:2 2:3L", render("{% for x in [1, 2, 3] %}{{ loop.index0 }}:{{ x }}{% if loop.first %}F"
                + "{% endif %}{% if loop.last %}L{% endif %}{% if not loop.last %} {% endif %}{% endfor %}"));
        assertEquals("1:2 2:4 ", render("{% for i in [1,2,3,4] if i is even %}{{ loop.index }}:{{ i }} {% else %}none"
                + "{% endfor %}"));
        assertEquals("empty", render("{% for i in [] %}x{% else %}empty{% endfor %}"));
        assertEquals("13", render("{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}"
                + "{% break %}{% endif %}{{ x }}{% endfor %}"));
        assertEquals("x=1,y=2", render("{% for a, b in {'x': 1, 'y': 2}.items() %}{{ a }}={{ b }}{% if not loop.last %},"
                + "{% endif %}{% endfor %}"));
        assertEquals("3 2 1 ", render("{% for m in xs[::-1] %}{{ m }} {% endfor %}", Map.of("xs", List.of(1, 2, 3))));
    }

    @Test
    void scopingNamespaceAndSet() {
        assertEquals("4", render("{% set ns = namespace(x=1) %}{% for i in range(3) %}{% set ns.x = ns.x + i %}"
                + "{% endfor %}{{ ns.x }}"));
        assertEquals("outer|outer", render("{% for i in [1,2] %}{% if i==2 %}{{x}}{% endif %}{% set x = i %}{% endfor %}"
                + "|{{x}}", Map.of("x", "outer")));
        assertEquals("6", render("{% set x = 5 %}{% if true %}{% set x = 6 %}{% endif %}{{x}}"));
        assertEquals("12(1, 2)", render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{{ (1, 2) }}"));
        assertEquals("[inner 2]", render("{% set x %}inner {{ 1+1 }}{% endset %}[{{ x }}]"));
        assertEquals("[12][13]", render("{% macro m(a, b=2) %}[{{a}}{{b}}]{% endmacro %}{{ m(1) }}{{ m(1, b=3) }}"));
    }

    @Test
    void expressionsWithPythonSemantics() {
        assertEquals("a1None|[3, 2, 1]|el|olh|[3, 4]",
                render("{{ 'a' ~ 1 ~ none }}|{{ [1,2,3][::-1] }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-2] }}|{{ [1,2,3,4][-2:] }}"));
        assertEquals("|yes|1|1024|1|-4|0.25",
                render("{{ 1 if false }}|{{ 'yes' if 1 > 0 else 'no' }}|{{ 3 // 2 }}|{{ 2 ** 10 }}|{{ 7 % 3 }}|{{ -7 // 2 }}"
                        + "|{{ 1 / 4 }}"));
        assertEquals("True|False|True|True|True|True|True",
                render("{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'a' in 'abc' }}|{{ 'z' not in ['a'] }}|{{ none is none }}"
                        + "|{{ 1 is number }}|{{ {} is mapping }}"));
        assertEquals("1.0|0.30000000000000004|1e-07|2.5e+20|33.333333333333336|-0.0",
                render("{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e-7 }}|{{ 2.5e20 }}|{{ 100.0 / 3 }}|{{ -0.0 }}"));
        assertEquals("['a', 'b', '', 'c']|['a', 'b']|hi|True",
                render("{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'xxhixx'.strip('x') }}"
                        + "|{{ 'abc'.startswith(('x','a')) }}"));
        assertEquals("it's|[\"it's\", 'q\"']", render("{{ \"it's\" }}|{{ ['it\\'s', \"q\\\"\"] }}"));
        assertEquals("5|user|False|assistant", render("{{ messages[0].content|length }}{{ '|' }}{{ messages[0]['role'] }}"
                + "|{{ messages[5] is defined }}|{{ messages[-1].role }}", Map.of("messages",
                List.of(Map.of("role", "user", "content", "Hello"), Map.of("role", "assistant", "content", "x")))));
    }

    @Test
    void filters() {
        assertEquals("x y|ABC|[1, 2, 3]|2|x|d", render("{{ '  x y  '|trim }}|{{ 'abc'|upper }}|{{ [3,1,2]|sort }}"
                + "|{{ [1,2]|length }}|{{ 'x'|default('d') }}|{{ undefined_var|default('d') }}"));
        assertEquals("{\"a\": [1, 2.5, null, true, \"é\\\"\\n\"]}|{\n  \"a\": {\n    \"b\": 1\n  }\n}",
                render("{{ {'a': [1, 2.5, none, true, 'é\"\\n']}|tojson }}|{{ {'a':{'b':1}}|tojson(indent=2) }}"));
        assertEquals("Hi, Yo|['user', 'user']", render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute="
                + "'content') | join(', ') }}|{{ ms|map(attribute='role')|list }}", Map.of("ms",
                List.of(Map.of("role", "user", "content", "Hi"), Map.of("role", "user", "content", "Yo")))));
        assertEquals("x and 3|Hello World|[1, 2, 3]|6", render("{{ '%s and %d'|format('x', 3) }}|{{ 'Hello World'|lower"
                + "|title }}|{{ [1,2,2,3]|unique|list }}|{{ [1,2,3]|sum }}"));
    }

    @Test
    void numberLiteralsAreAsciiDigitsOnly() {
        assertEquals("3.5", render("{{ 3.5 }}"));
        // U+06F3 (a Unicode digit three) once reached Double.parseDouble as part of a literal
        assertThrows(TemplateException.class, () -> Template.compile("{{ 3.3\u06f3 }}"));
        assertThrows(TemplateException.class, () -> Template.compile("{{ \u06f3 }}"));
    }

    @Test
    void errorsNameTheLineAndColumn() {
        var e = assertThrows(TemplateException.class, () -> render("line one\n{{ x.y }}"));
        assertEquals(2, e.line());
        assertTrue(e.getMessage().contains("'x' is undefined"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> render("{{ raise_exception('bad ' ~ 1) }}"));
        assertTrue(e.getMessage().endsWith("raise_exception: bad 1"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> Template.compile("a\n  {% if %}"));
        assertEquals("chat template line 2, column 9: unexpected '%}'", e.getMessage());
        e = assertThrows(TemplateException.class, () -> render("{{ 'a'|nofilter }}"));
        assertTrue(e.getMessage().contains("unknown filter 'nofilter'"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> render("{{ 1 + 'a' }}"));
        assertTrue(e.getMessage().contains("unsupported operand types for +: int and str"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> Template.compile("{% for x in y %}"));
        assertTrue(e.getMessage().contains("unexpected end of template"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> Template.compile("{% include 'x' %}"));
        assertTrue(e.getMessage().contains("unsupported or unknown tag 'include'"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> render("{% set x = 1 %}{% set x.a = 2 %}"));
        assertTrue(e.getMessage().contains("only namespace() objects"), e.getMessage());
    }

    @Test
    void hostileTemplatesFailWithAMessageNotAStackOverflowOrAHang() {
        String deepIf = "{% if true %}".repeat(5000) + "x" + "{% endif %}".repeat(5000);
        var e = assertThrows(TemplateException.class, () -> Template.compile(deepIf));
        assertTrue(e.getMessage().contains("nested deeper than 100 levels"), e.getMessage());
        String deepParens = "{{ " + "(".repeat(20000) + "1" + ")".repeat(20000) + " }}";
        e = assertThrows(TemplateException.class, () -> Template.compile(deepParens));
        assertTrue(e.getMessage().contains("nested deeper than 100 levels"), e.getMessage());
        String nots = "{{ " + "not ".repeat(20000) + "x }}";
        assertThrows(TemplateException.class, () -> Template.compile(nots));

        e = assertThrows(TemplateException.class, () -> render("{% set ns = namespace(s='ab') %}"
                + "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"));
        assertTrue(e.getMessage().contains("exceeds the limit of " + Interpreter.MAX_CHARS), e.getMessage());
        e = assertThrows(TemplateException.class, () -> render("{{ 'ab' * 1000000000000 }}"));
        assertTrue(e.getMessage().contains("exceeds the limit"), e.getMessage());
        e = assertThrows(TemplateException.class, () -> render("{{ [1, 2] * 1000000000000 }}"));
        assertTrue(e.getMessage().contains("exceeds the limit"), e.getMessage());

        long start = System.nanoTime();
        e = assertThrows(TemplateException.class, () -> render(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"));
        assertTrue(e.getMessage().contains("more than " + Interpreter.MAX_STEPS + " steps"), e.getMessage());
        assertTrue(System.nanoTime() - start < 60_000_000_000L, "stopped by the budget, not by the test's patience");
        e = assertThrows(TemplateException.class, () -> render(
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"));
        assertTrue(e.getMessage().contains("too deep"), e.getMessage());
    }
}

