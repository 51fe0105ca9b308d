//! Diagnostics: spec errors that point at file, line and column with a caret.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The source line the problem is on, and the caret's width.
    snippet: Option<(String, usize)>,
}

impl Diagnostic {
    /// Locate `span` (byte offsets into `source`) and build a diagnostic.
    pub fn at(
        file: &Path,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map(|p| p + 1).unwrap_or(0);
        let line_end = source[start..]
            .find('\n')
            .map(|p| start + p)
            .unwrap_or(source.len());
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let text = source[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        let width = source[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
            snippet: Some((text, width)),
        }
    }

    /// A problem that belongs to the file as a whole (it cannot be read).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            hint: None,
            snippet: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let num = self.line.to_string();
        let pad = " ".repeat(if self.line == 0 { 1 } else { num.len() });
        if self.line == 0 {
            write!(f, "{pad}--> {}", self.file.display())?;
        } else {
            write!(
                f,
                "{pad}--> {}:{}:{}",
                self.file.display(),
                self.line,
                self.column
            )?;
        }
        if let Some((text, width)) = &self.snippet {
            write!(
                f,
                "\n{pad} |\n{num} | {text}\n{pad} | {}{}",
                " ".repeat(self.column - 1),
                "^".repeat(*width)
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one spec, reported together.
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<Diagnostic>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, d) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "\n\n{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.0
                .first()
                .map(|d| d.file.display().to_string())
                .unwrap_or_default()
        )
    }
}

impl std::error::Error for SpecErrors {}

/// The known name nearest to `word`, if one is near enough to be a typo.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}
