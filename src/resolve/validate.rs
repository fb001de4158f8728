//! Validating a record: its employee ID, email address, name, the length of its values and its
//! dates. A record with a problem is skipped and its XID held: a broken row never offboards
//! anyone.

use jiff::civil::Date;

use super::duplicates::Duplicates;
use crate::config::{Config, DuplicateXids};
use crate::fields::{FieldName, parse_date};
use crate::hr::{Layout, Record};
use crate::redact::mask_email;

/// The longest HR value read (names, job titles, addresses and codes are far shorter).
const MAX_VALUE_CHARS: usize = 255;

/// The longest employee ID read: as long as any value.
const MAX_XID_CHARS: usize = MAX_VALUE_CHARS;

/// The longest email address there is: a path of 256 octets, brackets included (RFC 5321, 4.5.3.1.3).
const MAX_EMAIL_CHARS: usize = 254;

/// Where the values checked are in a record of one layout.
pub(super) struct Checks<'c> {
    layout: &'c Layout,
    date_format: &'c str,
    xid_slot: usize,
    email_slot: usize,
    name_slots: Vec<usize>,
    start_slot: Option<usize>,
    end_slot: Option<usize>,
    /// Rows of one employee ID are one person's contracts, not duplicates.
    merging: bool,
}

/// A record's first and last working day, when it has them.
pub(super) struct Dates {
    pub start: Option<Date>,
    pub end: Option<Date>,
}

impl Dates {
    /// The end date, when it has passed: offboarded the day after the last working day. An
    /// end before the start is a hire called off: never invited (offboarded if an account exists).
    pub fn ended(&self, today: Date) -> Option<Date> {
        let start = self.start;
        (self.end).filter(|end| *end < today || start.is_some_and(|start| *end < start))
    }
}

impl<'c> Checks<'c> {
    pub fn new(config: &'c Config, layout: &'c Layout) -> Checks<'c> {
        Checks {
            layout,
            date_format: config.sync.source.format().date_format,
            xid_slot: layout
                .slot(&FieldName::Xid)
                .expect("xid is always configured"),
            email_slot: (layout.slot(&FieldName::Email)).expect("email is always configured"),
            name_slots: [FieldName::FirstName, FieldName::LastName]
                .iter()
                .filter_map(|f| layout.slot(f))
                .collect(),
            start_slot: layout.slot(&FieldName::StartDate),
            end_slot: layout.slot(&FieldName::EndDate),
            merging: config.sync.policy.duplicate_xids == DuplicateXids::Merge,
        }
    }

    /// Adds the problems of `record` to `problems` (the row's own first), in the order a person
    /// reads the row; and returns its dates.
    pub fn check(
        &self,
        record: &Record,
        duplicates: &Duplicates<'_>,
        problems: &mut Vec<String>,
    ) -> Dates {
        problems.extend(record.problem.clone());
        problems.extend(self.xid_problem(record, duplicates));
        problems.extend(self.email_problem(record, duplicates));
        if !self.name_slots.is_empty()
            && self.name_slots.iter().all(|&s| record.value(s).is_empty())
        {
            problems.push("missing name".to_string());
        }
        self.long_values(record, problems);
        Dates {
            start: self.date(record, self.start_slot, "start date", problems),
            end: self.date(record, self.end_slot, "end date", problems),
        }
    }

    fn xid_problem(&self, record: &Record, duplicates: &Duplicates<'_>) -> Option<String> {
        let column = &self.layout.columns[self.xid_slot];
        let xid = record.value(self.xid_slot);
        if xid.is_empty() {
            return Some(format!("missing employee ID (column \"{column}\")"));
        }
        if let Some(problem) = unusable_identifier(xid, MAX_XID_CHARS, true) {
            return Some(format!("the employee ID (column \"{column}\") {problem}"));
        }
        if self.merging {
            return None;
        }
        let lines = duplicates.xid(xid)?;
        Some(format!(
            "duplicate employee ID, on lines {}",
            join_lines(lines)
        ))
    }

    fn email_problem(&self, record: &Record, duplicates: &Duplicates<'_>) -> Option<String> {
        let column = &self.layout.columns[self.email_slot];
        let email = record.value(self.email_slot);
        if email.is_empty() {
            return Some(format!("missing email address (column \"{column}\")"));
        }
        if let Some(problem) = unusable_identifier(email, MAX_EMAIL_CHARS, false) {
            return Some(format!("the email address (column \"{column}\") {problem}"));
        }
        if !plausible_email(email) {
            return Some(format!("invalid email address {}", mask_email(email)));
        }
        let lines = duplicates.email(email)?;
        Some(format!(
            "duplicate email address, on lines {}",
            join_lines(lines)
        ))
    }

    /// A value no profile field holds is a broken export (a column run together with the rest
    /// of the file, say), not a name or a job title. The ID and the address have limits of
    /// their own; extra fields are only matched against.
    fn long_values(&self, record: &Record, problems: &mut Vec<String>) {
        if record.values_len() <= MAX_VALUE_CHARS {
            return;
        }
        for (slot, column) in self.layout.columns.iter().enumerate() {
            if matches!(self.layout.fields[slot], FieldName::Extra(_))
                || slot == self.xid_slot
                || slot == self.email_slot
            {
                continue;
            }
            let chars = record.value(slot).chars().count();
            if chars > MAX_VALUE_CHARS {
                problems.push(format!(
                    "the value in column \"{column}\" is {chars} characters long; at most {MAX_VALUE_CHARS} are read"
                ));
            }
        }
    }

    /// The date in `slot`, if the layout has the slot and the record a value there; a value
    /// that is no date in the configured format is a problem.
    fn date(
        &self,
        record: &Record,
        slot: Option<usize>,
        label: &str,
        problems: &mut Vec<String>,
    ) -> Option<Date> {
        let slot = slot?;
        let text = record.value(slot);
        if text.is_empty() {
            return None;
        }
        let date = parse_date(self.date_format, text);
        if date.is_none() {
            problems.push(format!(
                "unparseable {label} \"{text}\" (column \"{}\"; expected the format {})",
                self.layout.columns[slot], self.date_format
            ));
        }
        date
    }
}

/// Why an identifier cannot be used, if it cannot: it holds a character that breaks or disguises
/// the line it is shown on (a line break from a quoted CSV value, a bidirectional override), or
/// whitespace inside it when `no_whitespace` (an ID is one word; addresses have their own check),
/// or it is longer than `max` characters. Its value is not repeated: it is what cannot be shown.
fn unusable_identifier(value: &str, max: usize, no_whitespace: bool) -> Option<String> {
    let found = value
        .chars()
        .enumerate()
        .find(|&(_, c)| crate::text::disguises_the_line(c) || (no_whitespace && c.is_whitespace()));
    if let Some((at, c)) = found {
        let what = match c {
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => "a line break",
            c if c.is_whitespace() => "a space",
            c if c.is_control() => "a control character",
            _ => "a bidirectional text control",
        };
        return Some(format!(
            "holds {what} (U+{:04X}, character {}); fix the value in the HR export",
            u32::from(c),
            at + 1
        ));
    }
    let chars = value.chars().count();
    (chars > max).then(|| {
        format!("is {chars} characters long; at most {max} are read (a column run together with the next?)")
    })
}

/// A deliberately loose check: Speakap is the judge of deliverability; this catches export
/// accidents.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    // Quoted local parts are valid mail addresses but no HR export has them; a quote or comma
    // here is a broken CSV row far more often.
    let special = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']' | '@'
            )
    };
    let local_ok = !local.is_empty() && !local.contains(special);
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    local_ok && domain.contains('.') && labels_ok
}

pub(super) fn join_lines(lines: &[u64]) -> String {
    lines
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses_have_a_plain_local_part_and_a_dotted_domain() {
        for good in [
            "a.b+c@x-y.example.nl",
            "zo\u{eb}@b\u{e4}cker.de",
            "O'Brien@x.ie",
        ] {
            assert!(plausible_email(good), "{good}");
        }
        for bad in [
            "a@x.nl\"",
            "\"a\"@x.nl",
            "a b@x.nl",
            "a,b@x.nl",
            "a@x",
            "a@.x.nl",
            "a@x..nl",
            "a@-x.nl",
            "a@x.nl;b",
            "@x.nl",
            "a@b@x.nl",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn identifiers_with_line_breaks_spaces_or_too_many_characters_are_unusable() {
        assert_eq!(unusable_identifier("1001", MAX_XID_CHARS, true), None);
        let problem = unusable_identifier("10\n01", MAX_XID_CHARS, true).unwrap();
        assert!(
            problem.starts_with("holds a line break (U+000A, character 3)"),
            "{problem}"
        );
        let problem = unusable_identifier("10 01", MAX_XID_CHARS, true).unwrap();
        assert!(problem.starts_with("holds a space"), "{problem}");
        assert_eq!(
            unusable_identifier("a b@x.nl", MAX_EMAIL_CHARS, false),
            None
        );
        let problem = unusable_identifier(&"é".repeat(256), MAX_XID_CHARS, true).unwrap();
        assert!(problem.starts_with("is 256 characters long"), "{problem}");
    }
}
