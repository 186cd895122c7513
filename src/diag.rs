//! Diagnostics for bad input: every error points at a file, line and column, says what was
//! expected and, where a near miss exists, suggests the nearest valid name.

use std::fmt;
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

    /// Renders the error with the offending source line and a caret under the column.
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        if let Some(snippet) = self.span.as_ref().and_then(source_snippet) {
            out.push('\n');
            out.push_str(&snippet);
        }
        out
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

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {}", d.render())?;
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

fn source_snippet(span: &Span) -> Option<String> {
    if span.line == 0 {
        return None;
    }
    let text = std::fs::read_to_string(&*span.file).ok()?;
    let line = text.lines().nth(span.line - 1)?;
    let pad = " ".repeat(span.line.to_string().len());
    let caret = " ".repeat(span.col.saturating_sub(1));
    Some(format!("{pad} |\n{} | {line}\n{pad} | {caret}^", span.line))
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
    fn display_names_place_and_hint() {
        let span = Span::new(&Arc::from("site.yml"), 12, 7);
        let d = Diag::at(&span, "unknown module 'copyy'").suggest("copyy", ["copy"]);
        assert_eq!(
            d.to_string(),
            "unknown module 'copyy' at site.yml:12:7; did you mean 'copy'?"
        );
    }
}
