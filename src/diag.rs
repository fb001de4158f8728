//! Diagnostics: problems a person can act on, with the place, the rule broken and a hint.

use serde::Serialize;

use crate::text::inert;

/// One YAML file of the config directory.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path relative to the repository root, with `/` separators (as GitHub annotations want).
    pub path: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Which check fired, e.g. `schema/type`, `duplicate-key`, `regex`.
    pub rule: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Other places involved, e.g. where a duplicated key was first defined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<(Location, String)>,
}

impl Diagnostic {
    pub fn error(rule: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            rule: rule.to_string(),
            message: message.into(),
            location: None,
            hint: None,
            related: Vec::new(),
        }
    }

    pub fn warning(rule: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(rule, message)
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn related(mut self, location: Location, note: impl Into<String>) -> Self {
        self.related.push((location, note.into()));
        self
    }

    fn sort_key(&self) -> (Severity, Option<&Location>, &str) {
        (self.severity, self.location.as_ref(), &self.message)
    }
}

/// Errors first, then by place: the order people fix things in.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// Renders diagnostics rustc-style, with the offending source line and a caret.
pub fn render_text(diagnostics: &[Diagnostic], files: &[SourceFile]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let label = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Messages quote values from the files (a key, a value), which may hold line breaks.
        out.push_str(&format!("{label}[{}]: {}\n", d.rule, inert(&d.message)));
        if let Some(location) = &d.location {
            out.push_str(&format!("  --> {}\n", inert(&location.to_string())));
            if let Some(source_line) = source_line(files, location) {
                let number = location.line.to_string();
                let pad = " ".repeat(number.len());
                let before: String = source_line
                    .chars()
                    .take(location.column.saturating_sub(1))
                    .collect();
                // As wide as the text before the column once shown: an escaped character is.
                let caret_pad = " ".repeat(inert(&before).chars().count());
                out.push_str(&format!(
                    "{pad} |\n{number} | {}\n{pad} | {caret_pad}^\n",
                    inert(source_line)
                ));
            }
        }
        for (location, note) in &d.related {
            out.push_str(&format!(
                "  = note: {}: {}\n",
                inert(note),
                inert(&location.to_string())
            ));
        }
        if let Some(hint) = &d.hint {
            out.push_str(&format!("  = hint: {}\n", inert(hint)));
        }
        out.push('\n');
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    out.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
    out
}

fn source_line<'a>(files: &'a [SourceFile], location: &Location) -> Option<&'a str> {
    let file = files.iter().find(|f| f.path == location.file)?;
    file.text.lines().nth(location.line.checked_sub(1)?)
}

/// GitHub workflow commands, so problems show inline on a pull request's diff.
pub fn render_github(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if let Some(hint) = &d.hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        let properties = match &d.location {
            Some(l) => format!(
                " file={},line={},col={},title={}",
                escape_property(&l.file),
                l.line,
                l.column,
                escape_property(&d.rule)
            ),
            None => format!(" title={}", escape_property(&d.rule)),
        };
        out.push_str(&format!(
            "::{command}{properties}::{}\n",
            escape_data(&message)
        ));
    }
    out
}

/// Escaping of a workflow command's message, as GitHub's toolkit does it.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a workflow command's property value, as GitHub's toolkit does it.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_commands_escape_newlines_and_separators() {
        let d = Diagnostic::error("schema/type", "50% wrong\nreally")
            .at(Location {
                file: "a,b.yaml".into(),
                line: 3,
                column: 7,
            })
            .hint("quote: it");
        assert_eq!(
            render_github(&[d]),
            "::error file=a%2Cb.yaml,line=3,col=7,title=schema/type::50%25 wrong%0Areally%0Ahint: quote: it\n"
        );
    }
}
