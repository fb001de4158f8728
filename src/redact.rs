//! Masking of personal contact data in output that may be shared (PR comments, error messages).

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

fn mask(value: &str) -> String {
    let first: String = value.chars().take(1).collect();
    format!("{first}***")
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
    }
}
