//! Untrusted text (HR data, API answers, file names from a server) made inert for a terminal or
//! log line: it never spans lines, never reorders the text around it, and never starts a line
//! with `::` (a workflow command in a GitHub Actions log). Also a count with the noun that fits it.

use std::borrow::Cow;

/// `count` and the noun that fits it: "1 page", "3 pages"; "1 person is", "2 people are".
pub fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `value` with every character that could break or disguise the line it is printed on shown
/// escaped: line breaks and other control characters (C0, DEL, C1), the line and paragraph
/// separators U+2028/U+2029 and the bidirectional controls (U+061C, U+200E/F, U+202A–U+202E,
/// U+2066–U+2069). A leading `::` is escaped too, for a value printed at the start of a line.
/// Text without any of these is returned as is, without a copy.
pub fn inert(value: &str) -> Cow<'_, str> {
    let starts_a_command = value.starts_with("::");
    if !starts_a_command && !value.chars().any(disguises_the_line) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    let mut chars = value.chars();
    if starts_a_command {
        chars.next();
        out.push_str("\\u{3a}");
    }
    for c in chars {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if disguises_the_line(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` can end a line or change how the rest of it reads.
pub fn disguises_the_line(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}' | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(
            inert("a\r\n::error::x\u{2028}\u{202e}b\u{85}\u{1b}[31m\tc"),
            "a\\r\\n::error::x\\u{2028}\\u{202e}b\\u{85}\\u{1b}[31m\\tc"
        );
        assert_eq!(inert("::warning title=x::y"), "\\u{3a}:warning title=x::y");
        assert!(matches!(inert("Jan de Vries-Ünal"), Cow::Borrowed(_)));
    }
}
