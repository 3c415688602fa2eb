/**
 * <b>Internal</b>: the Jinja2 interpreter behind {@link dev.relat.model.ChatTemplate}, covering
 * the subset Hugging Face chat templates use (lexer, parser, interpreter, Python-like values and
 * filters), with budgets that keep a hostile template from hanging or exhausting memory. It may
 * change without notice; render templates through {@code ChatTemplate} or
 * {@link dev.relat.model.QwenTokenizer}. The one class callers meet is {@link TemplateException},
 * a {@link dev.relat.RelatException} naming the line and column, which rendering throws.
 */
package dev.relat.model.template;
