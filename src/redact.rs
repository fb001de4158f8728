//! Masking of personal contact data in output that may be shared (PR comments, error messages).

/// `jan.devries@example.com` → `j***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => mask(email),
    }
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
        assert_eq!(mask_email("jan.devries@example.com"), "j***@example.com");
        assert_eq!(mask_email("no-at-sign"), "n***");
        assert_eq!(mask_phone("+31 6 1234 5678"), "***78");
    }
}
