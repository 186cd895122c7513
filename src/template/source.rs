//! Python and Ansible syntax that Jinja2 accepts and minijinja does not, rewritten into
//! minijinja's own before a template is compiled:
//!
//! - Python's `%` string formatting, `'%s:%d' % (host, port)`: Jinja2 evaluates `%` as Python
//!   does, so a string on the left formats. minijinja's `%` is only the remainder, so a string
//!   literal followed by `%` becomes a call of the `__py_percent` filter, with a tuple's items
//!   as its arguments (`'%s:%d'|__py_percent(host, port)`) and anything else as the one
//!   argument (`'%s'|__py_percent((x|upper))`), which keeps Python's precedence: `%` binds
//!   tighter than `~`, `+` and comparisons, looser than filters, attributes and `**`.
//! - Filter and test names qualified by `ansible.builtin.` (`x | ansible.builtin.to_json`,
//!   `v is ansible.builtin.version('2', '>')`), which Jinja2 resolves through Ansible's plugin
//!   loader: the qualifier is dropped.
//!
//! Only a string *literal* formats: `fmt % args` with `fmt` a variable stays the remainder
//! (minijinja decides the operation without knowing the value's type); real roles write the
//! literal form.

use minijinja::machinery::{Span, Token, tokenize};
use minijinja::syntax::SyntaxConfig;
use std::borrow::Cow;

/// The filter a formatting `%` becomes.
pub const PERCENT_FILTER: &str = "__py_percent";

const BUILTIN: &str = "ansible.builtin";

/// `src` with the rewrites above applied (borrowed when there is nothing to rewrite, or when it
/// does not tokenize: then compiling it reports the syntax error as written).
pub fn rewrite<'s>(src: &'s str, expression: bool, syntax: &SyntaxConfig) -> Cow<'s, str> {
    if !src.contains('%') && !src.contains(BUILTIN) {
        return Cow::Borrowed(src);
    }
    let Ok(tokens) = tokenize(src, expression, syntax.clone()).collect::<Result<Vec<_>, _>>()
    else {
        return Cow::Borrowed(src);
    };
    let edits = edits(&tokens);
    if edits.is_empty() {
        return Cow::Borrowed(src);
    }
    Cow::Owned(apply(src, edits))
}

/// One replacement of the source's bytes `start..end`.
struct Edit {
    start: usize,
    end: usize,
    text: &'static str,
}

fn edits(tokens: &[(Token<'_>, Span)]) -> Vec<Edit> {
    let mut out = vec![];
    for i in 0..tokens.len() {
        match &tokens[i].0 {
            Token::Mod if i > 0 && is_string(&tokens[i - 1].0) => {
                percent_edits(tokens, i, &mut out)
            }
            Token::Ident(BUILTIN_HEAD) if qualified_name_at(tokens, i) => out.push(Edit {
                start: offset_start(&tokens[i].1),
                end: offset_start(&tokens[i + 4].1),
                text: "",
            }),
            _ => {}
        }
    }
    out
}

const BUILTIN_HEAD: &str = "ansible";

/// `ansible . builtin . NAME` right after `|` or `is`/`is not`.
fn qualified_name_at(tokens: &[(Token<'_>, Span)], i: usize) -> bool {
    let after_pipe_or_is = match i.checked_sub(1).map(|p| &tokens[p].0) {
        Some(Token::Pipe) | Some(Token::Ident("is")) => true,
        Some(Token::Ident("not")) => {
            matches!(tokens.get(i.wrapping_sub(2)), Some((Token::Ident("is"), _)))
        }
        _ => false,
    };
    after_pipe_or_is
        && matches!(
            tokens.get(i + 1..i + 5),
            Some([
                (Token::Dot, _),
                (Token::Ident("builtin"), _),
                (Token::Dot, _),
                (Token::Ident(_), _)
            ])
        )
}

/// The edits turning `LITERAL % RHS` (the `%` at `at`) into a call of [`PERCENT_FILTER`].
fn percent_edits(tokens: &[(Token<'_>, Span)], at: usize, out: &mut Vec<Edit>) {
    let Some(end) = unary_end(tokens, at + 1) else {
        return;
    };
    let rhs_start = at + 1;
    let percent = offset_start(&tokens[at].1);
    if is_tuple(tokens, rhs_start, end) {
        // `% (a, b)` → `|__py_percent(a, b)`: the tuple's parentheses become the call's.
        out.push(Edit {
            start: percent,
            end: offset_end(&tokens[rhs_start].1),
            text: "|__py_percent(",
        });
    } else {
        out.push(Edit {
            start: percent,
            end: offset_end(&tokens[at].1),
            text: "|__py_percent((",
        });
        let after = offset_end(&tokens[end - 1].1);
        out.push(Edit {
            start: after,
            end: after,
            text: "))",
        });
    }
}

fn is_string(t: &Token<'_>) -> bool {
    matches!(t, Token::Str(_) | Token::String(_))
}

/// The index after the unary expression (Jinja2's `parse_unary`: sign, primary, postfixes,
/// filters, tests, `**`) starting at `i`, or `None` when it is not one.
fn unary_end(tokens: &[(Token<'_>, Span)], mut i: usize) -> Option<usize> {
    while matches!(tokens.get(i)?.0, Token::Minus | Token::Plus) {
        i += 1;
    }
    i = match &tokens.get(i)?.0 {
        Token::Str(_) | Token::String(_) => {
            let mut j = i;
            while tokens.get(j).is_some_and(|t| is_string(&t.0)) {
                j += 1;
            }
            j
        }
        Token::Ident(_) | Token::Int(_) | Token::Int128(_) | Token::Float(_) => i + 1,
        Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => closing(tokens, i)? + 1,
        _ => return None,
    };
    loop {
        i = match tokens.get(i).map(|t| &t.0) {
            Some(Token::Dot) if i + 1 < tokens.len() => i + 2,
            Some(Token::BracketOpen | Token::ParenOpen) => closing(tokens, i)? + 1,
            Some(Token::Pipe) => called_name_end(tokens, i + 1)?,
            Some(Token::Ident("is")) => {
                let name = i + 1 + usize::from(matches!(tokens.get(i + 1)?.0, Token::Ident("not")));
                called_name_end(tokens, name)?
            }
            Some(Token::Pow) => unary_end(tokens, i + 1)?,
            _ => return Some(i),
        };
    }
}

/// The index after a filter or test name (possibly dotted) and its optional `(...)`.
fn called_name_end(tokens: &[(Token<'_>, Span)], mut i: usize) -> Option<usize> {
    let Token::Ident(_) = tokens.get(i)?.0 else {
        return None;
    };
    i += 1;
    while matches!(
        (tokens.get(i).map(|t| &t.0), tokens.get(i + 1).map(|t| &t.0)),
        (Some(Token::Dot), Some(Token::Ident(_)))
    ) {
        i += 2;
    }
    match tokens.get(i).map(|t| &t.0) {
        Some(Token::ParenOpen) => Some(closing(tokens, i)? + 1),
        _ => Some(i),
    }
}

/// The index of the bracket closing the one opened at `open`.
fn closing(tokens: &[(Token<'_>, Span)], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, (t, _)) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            Token::VariableEnd | Token::BlockEnd => return None,
            _ => {}
        }
    }
    None
}

/// Whether `start..end` is exactly one parenthesised group with a comma at its top level.
fn is_tuple(tokens: &[(Token<'_>, Span)], start: usize, end: usize) -> bool {
    if !matches!(tokens[start].0, Token::ParenOpen) || closing(tokens, start) != Some(end - 1) {
        return false;
    }
    let mut depth = 0usize;
    tokens[start + 1..end - 1].iter().any(|(t, _)| {
        match t {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => depth -= 1,
            _ => {}
        }
        depth == 0 && matches!(t, Token::Comma)
    })
}

fn offset_start(s: &Span) -> usize {
    s.start_offset as usize
}

fn offset_end(s: &Span) -> usize {
    s.end_offset as usize
}

fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(src.len() + 32);
    let mut at = 0;
    for e in edits {
        out.push_str(&src[at..e.start]);
        out.push_str(e.text);
        at = e.end;
    }
    out.push_str(&src[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(src: &str) -> String {
        rewrite(src, true, &SyntaxConfig::default()).into_owned()
    }

    #[test]
    fn a_literal_with_a_tuple_formats_with_its_items() {
        assert_eq!(expr("'%s:%d' % (h, p)"), "'%s:%d' |__py_percent(h, p)");
        assert_eq!(expr("'%s' % (h,)"), "'%s' |__py_percent(h,)");
    }

    #[test]
    fn a_literal_with_one_value_keeps_python_precedence() {
        assert_eq!(
            expr("'%s' % x|upper ~ 'y'"),
            "'%s' |__py_percent(( x|upper)) ~ 'y'"
        );
        assert_eq!(expr("'%s' % a.b[0](1)"), "'%s' |__py_percent(( a.b[0](1)))");
        assert_eq!(expr("'%s' % (x)|list"), "'%s' |__py_percent(( (x)|list))");
        assert_eq!(
            expr("'%d' % -n ** 2 + 1"),
            "'%d' |__py_percent(( -n ** 2)) + 1"
        );
        assert_eq!(
            expr("'%(a)s' % {'a': 1}"),
            "'%(a)s' |__py_percent(( {'a': 1}))"
        );
    }

    #[test]
    fn a_cut_short_expression_is_left_for_the_compiler() {
        // No panic: what is cut short stays for minijinja to report as a syntax error.
        assert!(expr("'%s' % x.").ends_with('.'));
        // Found by the template fuzzer: a dot after the parentheses, at the very end.
        let found = "'{ {%s )ni'%(). ";
        rewrite(found, true, &SyntaxConfig::default());
        rewrite(
            &format!("{{{{ {found} }}}}"),
            false,
            &SyntaxConfig::default(),
        );
        assert_eq!(expr("'%s' %"), "'%s' %");
    }

    #[test]
    fn a_remainder_stays_a_remainder() {
        assert_eq!(expr("n % 2"), "n % 2");
        assert_eq!(expr("f('x') % 2"), "f('x') % 2");
    }

    #[test]
    fn templates_rewrite_only_their_code() {
        let t = rewrite("100% {{ '%s' % x }}%", false, &SyntaxConfig::default());
        assert_eq!(t, "100% {{ '%s' |__py_percent(( x)) }}%");
    }

    #[test]
    fn builtin_qualified_filters_and_tests_drop_the_qualifier() {
        assert_eq!(expr("x | ansible.builtin.to_json"), "x | to_json");
        assert_eq!(
            expr("v is ansible.builtin.version('2', '>')"),
            "v is version('2', '>')"
        );
        assert_eq!(expr("v is not ansible.builtin.file"), "v is not file");
        assert_eq!(expr("ansible.builtin.x"), "ansible.builtin.x");
    }
}
