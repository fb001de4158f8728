//! Text from an HR export written into YAML. It is untrusted: a code such as `yes`, `0012`,
//! `: x`, `#` or one holding a line break must read back as the same string, and must not end a
//! comment it stands in. Every such value is written as a double-quoted scalar with escapes, which
//! YAML reads as that string whatever it holds, on one line.

use std::fmt::Write;

/// `text` as a double-quoted YAML scalar.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Controls, what editors and terminals turn into line breaks or reorder, and a
            // byte order mark.
            c if crate::text::disguises_the_line(c) || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use saphyr::LoadableYamlNode;

    use super::quoted;

    fn read_back(document: &str) -> saphyr::Yaml<'_> {
        saphyr::Yaml::load_from_str(document)
            .expect("the YAML parses")
            .remove(0)
    }

    #[test]
    fn hostile_codes_read_back_as_the_same_strings_as_keys_and_values() {
        let hostile = [
            "yes",
            "no",
            "~",
            "null",
            "0012",
            "1e3",
            "0x1F",
            ": x",
            "#",
            "a # b",
            "- x",
            "[a]",
            "{a: b}",
            "&anchor",
            "*alias",
            "!tag",
            "|",
            ">",
            "'",
            "\"",
            "\\",
            "line\nbreak",
            "tab\there",
            "cr\rx",
            "\u{2028}",
            "\u{202e}evil",
            "\u{0}",
            "\u{7f}",
            " padded ",
            "",
            "%YAML",
            "---",
            "...",
            "@x",
            "`x`",
            "é ü ß",
        ];
        for text in hostile {
            let document = format!("{}: {}\n", quoted(text), quoted(text));
            assert!(
                !document.trim_end().contains('\n'),
                "one line: {document:?}"
            );
            let yaml = read_back(&document);
            let map = yaml.as_mapping().expect("a mapping");
            let (key, value) = map.iter().next().expect("one entry");
            assert_eq!(key.as_str(), Some(text), "key {text:?}");
            assert_eq!(value.as_str(), Some(text), "value {text:?}");
        }
    }
}
