//! Diagnostics for bad input: every error points at a file, line and column, says what was
//! expected and, where a near miss exists, suggests the nearest valid name.

use annotate_snippets::{
    AnnotationKind, Group, Level, Origin, Renderer, Snippet, normalize_untrusted_str,
};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl Span {
    pub fn new(file: &Arc<str>, line: usize, col: usize) -> Span {
        Span {
            file: file.clone(),
            line,
            col,
        }
    }

    /// A span for things that come from no file (command line, defaults).
    pub fn none(what: &str) -> Span {
        Span {
            file: Arc::from(what),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// One problem found in the input.
#[derive(Debug, Clone)]
pub struct Diag {
    pub msg: String,
    pub span: Option<Span>,
    pub hint: Option<String>,
}

impl Diag {
    pub fn new(msg: impl Into<String>) -> Diag {
        Diag {
            msg: msg.into(),
            span: None,
            hint: None,
        }
    }

    pub fn at(span: &Span, msg: impl Into<String>) -> Diag {
        Diag {
            msg: msg.into(),
            span: Some(span.clone()),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diag {
        self.hint = Some(hint.into());
        self
    }

    /// Adds "did you mean 'x'?" when one of `candidates` is close to `word`.
    pub fn suggest<'a>(self, word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Diag {
        match nearest(word, candidates) {
            Some(best) => self.hint(format!("did you mean '{best}'?")),
            None => self,
        }
    }

    /// Renders the error as rustc does, in plain text: the message, ` --> file:line:col`, the
    /// offending source line with a caret under the column, and the hint as `= help:`.
    pub fn render(&self) -> String {
        self.render_with(&Renderer::plain())
    }

    fn render_with(&self, renderer: &Renderer) -> String {
        let mut group = Group::with_title(Level::ERROR.primary_title(self.msg.as_str()));
        // Read here, not kept in the span: only a diagnostic that is shown needs its line.
        let line = self.span.as_ref().and_then(source_line);
        match (&self.span, &line) {
            (Some(span), Some((text, caret))) => {
                group = group.element(
                    Snippet::source(text.as_str())
                        .line_start(span.line)
                        .path(&*span.file)
                        .annotation(
                            AnnotationKind::Primary
                                .span(caret.clone())
                                .label(label(&self.msg)),
                        ),
                );
            }
            // No file to re-read (`--extra-vars`), or it changed since: the place alone.
            (Some(span), None) if span.line > 0 => {
                group = group.element(
                    Origin::path(&*span.file)
                        .line(span.line)
                        .char_column(span.col.max(1)),
                );
            }
            (Some(span), None) => group = group.element(Origin::path(&*span.file)),
            (None, _) => {}
        }
        let hint = self.hint.as_deref().map(normalize_untrusted_str);
        if let Some(hint) = &hint {
            group = group.element(Level::HELP.message(hint.as_str()));
        }
        renderer.render(&[group])
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.msg)?;
        if let Some(span) = &self.span {
            write!(f, " at {span}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diag {}

/// Several problems; validation collects all of them instead of stopping at the first.
#[derive(Debug, Clone, Default)]
pub struct Diags(pub Vec<Diag>);

impl Diags {
    pub fn push(&mut self, d: Diag) {
        self.0.push(d)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_result<T>(self, ok: T) -> Result<T, Diags> {
        if self.0.is_empty() { Ok(ok) } else { Err(self) }
    }
}

impl From<Diag> for Diags {
    fn from(d: Diag) -> Diags {
        Diags(vec![d])
    }
}

/// What the command line prints: each problem rendered as rustc does, a blank line between
/// them, in colour when stderr (where they go) is a terminal.
impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let renderer = if color_stderr() {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "\n\n")?;
            }
            write!(f, "{}", d.render_with(&renderer))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diags {}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Colour on stderr only for a terminal, and not when NO_COLOR is set (no-color.org).
pub fn color_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The span's line, re-read from its file, and the byte range of the character under its
/// (1-based, in characters) column; a column past the end points just after the line.
fn source_line(span: &Span) -> Option<(String, Range<usize>)> {
    if span.line == 0 {
        return None;
    }
    let text = std::fs::read_to_string(&*span.file).ok()?;
    // Errors at the end of the input (an unclosed quote or bracket) point at the line after
    // the last one: show it empty, as the end of the file.
    let line = match text.lines().nth(span.line - 1) {
        Some(l) => l.to_string(),
        None if span.line - 1 == text.lines().count() => String::new(),
        None => return None,
    };
    let caret = match line.char_indices().nth(span.col.saturating_sub(1)) {
        Some((at, c)) => at..at + c.len_utf8(),
        None => line.len()..line.len(),
    };
    Some((line, caret))
}

/// The first `needle` at or after `from` (within the next few lines), as a span: where a
/// `k=v` argument is written inside the string that holds it, so that an error about it
/// points at it rather than at the string's start. `from` itself when not found.
pub fn find_after(from: &Span, needle: &str) -> Span {
    thread_local! {
        /// The file last searched: a task's arguments are searched one after another.
        static LAST: std::cell::RefCell<Option<(Arc<str>, String)>> = const { std::cell::RefCell::new(None) };
    }
    const LINES: usize = 50;
    if from.line == 0 || needle.is_empty() {
        return from.clone();
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.as_ref().is_none_or(|(f, _)| *f != from.file) {
            let text = std::fs::read_to_string(&*from.file).unwrap_or_default();
            *last = Some((from.file.clone(), text));
        }
        let text = last.as_ref().map(|(_, t)| t.as_str()).unwrap_or_default();
        for (i, line) in text.lines().enumerate().skip(from.line - 1).take(LINES) {
            let skip = if i == from.line - 1 {
                from.col.saturating_sub(1)
            } else {
                0
            };
            let Some((start, _)) = line.char_indices().nth(skip) else {
                continue;
            };
            if let Some(at) = line[start..].find(needle) {
                let col = line[..start + at].chars().count() + 1;
                return Span::new(&from.file, i + 1, col);
            }
        }
        from.clone()
    })
}

/// The label under the caret: the message without its parenthesised details (where prov
/// looked, which parameter), which the title above already gives in full.
fn label(msg: &str) -> &str {
    let first = msg.lines().next().unwrap_or("");
    first.split_once(" (").map_or(first, |(head, _)| head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(nearest("copyy", ["copy", "command", "file"]), Some("copy"));
        assert_eq!(nearest("zzzzzz", ["copy", "command"]), None);
    }

    #[test]
    fn render_shows_the_line_and_a_caret_like_rustc() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("site.yml");
        std::fs::write(
            &file,
            "- hosts: all\n  tasks:\n    - copyy: {dest: /tmp/x}\n",
        )
        .unwrap();
        let file = file.display().to_string();
        let span = Span::new(&Arc::from(file.as_str()), 3, 7);
        let d = Diag::at(&span, "unknown module 'copyy'").suggest("copyy", ["copy"]);
        assert_eq!(
            d.render(),
            format!(
                "error: unknown module 'copyy'\n \
                 --> {file}:3:7\n  \
                 |\n\
                 3 |     - copyy: {{dest: /tmp/x}}\n  \
                 |       ^ unknown module 'copyy'\n  \
                 |\n  \
                 = help: did you mean 'copy'?"
            )
        );
        // At the end of the input: the (empty) line after the last one.
        let end = Diag::at(&Span::new(&span.file, 4, 1), "unexpected end (of the file)");
        assert_eq!(
            end.render(),
            format!(
                "error: unexpected end (of the file)\n \
                 --> {file}:4:1\n  \
                 |\n\
                 4 |\n  \
                 | ^ unexpected end"
            )
        );
        // No file to show: the place alone; no place: the message alone.
        let gone = Diag::at(&Span::new(&Arc::from("/nonexistent.yml"), 2, 3), "bad");
        assert_eq!(gone.render(), "error: bad\n--> /nonexistent.yml:2:3");
        assert_eq!(Diag::new("bad").render(), "error: bad");
    }

    #[test]
    fn display_names_place_and_hint() {
        let span = Span::new(&Arc::from("site.yml"), 12, 7);
        let d = Diag::at(&span, "unknown module 'copyy'").suggest("copyy", ["copy"]);
        assert_eq!(
            d.to_string(),
            "unknown module 'copyy' at site.yml:12:7; did you mean 'copy'?"
        );
    }
}
