//! Masking of personal contact data in output that may be shared (PR comments, error messages),
//! and redaction of credentials in excerpts of what a server answered.

use std::sync::LazyLock;

use regex::Regex;

/// `jan.devries@example.com` → `j*********s@example.com`: enough to tell two addresses apart in
/// a review, not enough to write to them.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let chars: Vec<char> = local.chars().collect();
            let masked = match chars.as_slice() {
                [first, middle @ .., last] if !middle.is_empty() => {
                    format!("{first}{}{last}", "*".repeat(middle.len()))
                }
                [first, ..] => format!("{first}***"),
                [] => "***".into(),
            };
            // Shown up to where it stops being a domain: past that it is other text (another
            // field or row swallowed by a broken CSV line, say), which may be personal.
            match domain.find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-')) {
                Some(end) => format!("{masked}@{}…", &domain[..end]),
                None => format!("{masked}@{domain}"),
            }
        }
        None => mask(email),
    }
}

/// Masks every email address in a text (an API error that quotes one, say), as [`mask_email`].
pub fn mask_emails_in(text: &str) -> String {
    let in_address = |c: char| c.is_alphanumeric() || "@._%+-'".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(in_address) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !in_address(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        match word.split_once('@') {
            Some((local, domain)) if !local.is_empty() && domain.contains('.') => {
                out.push_str(&mask_email(word));
            }
            _ => out.push_str(word),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Keeps the last two digits: `+31 6 1234 5678` → `***78`.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("***{tail}")
}

/// Masks every phone number in a text, as [`mask_phone`]: a word of at least seven digits,
/// possibly with a leading `+` and spaces, dashes, dots or parentheses between them, that is not
/// a date (`2026-03-01`, `01-03-2026`).
pub fn mask_phones_in(text: &str) -> String {
    static PHONE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:\+|\()?\b\d(?:[ ().-]{0,2}\d){6,}\b").expect("the phone pattern compiles")
    });
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})$")
            .expect("the date pattern compiles")
    });
    PHONE
        .replace_all(text, |found: &regex::Captures| {
            let number = &found[0];
            if DATE.is_match(number) {
                number.to_string()
            } else {
                mask_phone(number)
            }
        })
        .into_owned()
}

/// Text that may be personal data, for shareable output: its addresses and phone numbers masked.
pub fn mask_contacts_in(text: &str) -> String {
    mask_phones_in(&mask_emails_in(text))
}

/// Whether a value reads as a code (an employee number, `EMP-0042`, an address's masked form
/// aside) rather than text that may be a person's data: a whole row read as one value, a name.
/// Such text is masked in shareable output.
fn looks_like_code(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '+'))
}

/// Shareable form of an identifier: a code as is, an address masked, anything else (a row read
/// whole as one value, say) reduced to its first character and its length.
pub fn mask_identifier(value: &str) -> String {
    if !looks_like_code(value) {
        let chars = value.chars().count();
        return format!("{}*** ({chars} characters, not shown)", first_char(value));
    }
    if value.contains('@') {
        mask_email(value)
    } else {
        value.to_string()
    }
}

/// What replaces a credential in an excerpt.
const REDACTED: &str = "[redacted]";

/// A server's answer (an error page, a proxy echoing the request) made safe to print: the
/// `secrets` (the configured tokens) wherever they occur, `Authorization` header values,
/// `Bearer …`, `Basic …` and `AfasToken …` credentials, and long base64 or hex runs (a token
/// in another encoding) replaced by `[redacted]`. Run it on the whole text before cutting an
/// excerpt, or a cut token would no longer be recognised.
pub fn redact_credentials(text: &str, secrets: &[&str]) -> String {
    static HEADER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?i)(\b(?:proxy-)?authorization\b["']?\s*[:=]\s*["']?)[^"'\r\n,;&}]*"#)
            .expect("the header pattern compiles")
    });
    static SCHEME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(bearer|basic|afastoken)(\s+)[A-Za-z0-9._~+/=-]+")
            .expect("the scheme pattern compiles")
    });
    // Base64 with upper- and lower-case letters and digits (a URL path rarely has all three),
    // or hex; 32 characters and more: longer than the 16-character EIDs errors name.
    static ENCODED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[A-Za-z0-9+/_-]{32,}={0,2}|[0-9A-Fa-f]{32,}")
            .expect("the encoded pattern compiles")
    });
    let mut out = text.to_string();
    for secret in secrets.iter().map(|s| s.trim()).filter(|s| s.len() >= 4) {
        out = out.replace(secret, REDACTED);
    }
    let out = HEADER.replace_all(&out, format!("${{1}}{REDACTED}"));
    let out = SCHEME.replace_all(&out, format!("${{1}}${{2}}{REDACTED}"));
    ENCODED
        .replace_all(&out, |found: &regex::Captures| {
            let run = &found[0];
            let all_hex = run.bytes().all(|b| b.is_ascii_hexdigit());
            let mixed = run.bytes().any(|b| b.is_ascii_uppercase())
                && run.bytes().any(|b| b.is_ascii_lowercase())
                && run.bytes().any(|b| b.is_ascii_digit());
            if all_hex || mixed {
                REDACTED.to_string()
            } else {
                run.to_string()
            }
        })
        .into_owned()
}

fn first_char(value: &str) -> String {
    value.chars().take(1).collect()
}

fn mask(value: &str) -> String {
    format!("{}***", first_char(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_what_identifies_the_kind_of_value() {
        assert_eq!(
            mask_email("jan.devries@example.com"),
            "j*********s@example.com"
        );
        assert_eq!(mask_email("jo@example.com"), "j***@example.com");
        assert_eq!(mask_email("no-at-sign"), "n***");
        assert_eq!(
            mask_email("bert@example.com,Bert,Bos\n102,carla@example.com"),
            "b**t@example.com…"
        );
        assert_eq!(mask_phone("+31 6 1234 5678"), "***78");
        assert_eq!(
            mask_emails_in("HTTP 403: lars.dekker@example.com is the email of another user (-15)"),
            "HTTP 403: l*********r@example.com is the email of another user (-15)"
        );
        assert_eq!(
            mask_contacts_in(
                "call +31 6 1234 5678 or (020) 555-0134, not line 12 of 2026-03-01 or EMP1234567"
            ),
            "call ***78 or ***34, not line 12 of 2026-03-01 or EMP1234567"
        );
        assert_eq!(mask_identifier("EMP-0042"), "EMP-0042");
        assert_eq!(
            mask_identifier("1001,Jan,jan@example.com"),
            "1*** (24 characters, not shown)"
        );
    }

    #[test]
    fn credentials_are_redacted_before_an_excerpt_is_cut() {
        let token = "0123456789abcdef_s3cr3t";
        let echoed = format!(
            "{{\"headers\":{{\"authorization\":\"Bearer {token}\",\"x-afas\":\"AfasToken PHRva2VuPjwvdG9rZW4+\"}}}}\nAuthorization: Bearer abc.def\nkey=QWxhZGRpbjpvcGVuIHNlc2FtZQ0K1234abcd path /networks/053ecd475a000f30/users/"
        );
        let redacted = redact_credentials(&echoed, &[token]);
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        assert!(!redacted.contains("PHRva2Vu"), "{redacted}");
        assert!(!redacted.contains("abc.def"), "{redacted}");
        assert!(!redacted.contains("QWxhZGRp"), "{redacted}");
        assert!(
            redacted.contains("/networks/053ecd475a000f30/users/"),
            "{redacted}"
        );
        assert!(
            redacted.contains("\"authorization\":\"[redacted]"),
            "{redacted}"
        );
    }
}
