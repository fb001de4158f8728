//! The plan as Markdown for pull-request comments and job summaries: a summary table that always
//! stays, sections per kind of operation inside `<details>`, ⚠ on admin grants and offboarding,
//! personal contact data masked unless asked otherwise, and never longer than the limit (detail
//! is cut, with a note saying where the full plan is). Every value from the HR record, the
//! network or an API is escaped ([`inline`]) or set in a code span ([`code`]): it renders as
//! the text it is, on one line, and forms no element, mention, reference or link of its own.

use std::fmt::Write;

use super::impact::Impact;
use super::render::{hr_count, network_count};
use super::{Change, Plan, UserAction, UserPlan};
use crate::config::repo::short;
use crate::hr::Locator;
use crate::redact::{mask_contacts_in, mask_email, mask_identifier, mask_phone};
use crate::resolve::ProfileField;
use crate::text::inert;

/// GitHub refuses issue comments of 65,536 characters and more, counting UTF-16 code units (an
/// emoji counts two).
pub const GITHUB_COMMENT_LIMIT: Limit = Limit {
    max: 65_535,
    unit: Unit::Utf16,
};

/// How long a document may be, counted the way its destination counts.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: usize,
    pub unit: Unit,
}

impl Limit {
    pub const NONE: Limit = Limit {
        max: usize::MAX,
        unit: Unit::Bytes,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// UTF-8 bytes (GitHub's job summary).
    Bytes,
    /// UTF-16 code units, never fewer than characters (GitHub's comments).
    Utf16,
}

impl Unit {
    pub fn len(self, text: &str) -> usize {
        match self {
            Unit::Bytes => text.len(),
            Unit::Utf16 => text.encode_utf16().count(),
        }
    }
}

pub struct MarkdownOptions<'a> {
    /// Mask email addresses and phone numbers, and identifiers that are not codes.
    pub redact: bool,
    pub limit: Limit,
    /// A hidden marker identifying the comment (one sticky comment per config directory).
    pub marker: Option<&'a str>,
    /// Where the full plan can be read when this one is cut.
    pub full_plan: &'a str,
    pub impact: Option<&'a Impact>,
}

/// The hidden marker that finds the sticky comment for a config directory again.
pub fn comment_marker(config_dir: &str) -> String {
    format!("<!-- speakap-sync-plan: {config_dir} -->")
}

struct Section {
    summary: String,
    lines: Vec<String>,
}

pub fn markdown(plan: &Plan, options: &MarkdownOptions) -> String {
    let head = head(plan, options);
    let truncated_note = format!(
        "\n> ✂️ This plan is too long for a comment and was cut. The full plan: {}.\n",
        options.full_plan
    );
    let unit = options.limit.unit;
    let budget = options
        .limit
        .max
        .saturating_sub(unit.len(&head) + unit.len(&truncated_note) + OMITTED_RESERVE);
    let (body, truncated) = fit_sections(sections(plan, options.redact), budget, unit);
    let mut out = head;
    out.push_str(&body);
    if truncated {
        out.push_str(&truncated_note);
    }
    out
}

/// Room kept for naming the sections that did not fit.
const OMITTED_RESERVE: usize = 400;

/// The marker, the summary table, the safety verdict, the inputs, and what the config change
/// alone does.
fn head(plan: &Plan, options: &MarkdownOptions) -> String {
    let mut head = String::new();
    if let Some(marker) = options.marker {
        let _ = writeln!(head, "{marker}");
    }
    let _ = writeln!(
        head,
        "### speakap-sync plan · network {}\n",
        code(&plan.network)
    );
    let s = &plan.summary;
    let _ = writeln!(head, "| | |\n|---|---:|");
    for (label, count) in [
        ("➕ Invite", s.invite),
        ("♻️ Restore", s.restore),
        ("✏️ Update", s.update),
        ("⚠️ Suspend", s.suspend),
        ("⚠️ Delete", s.delete),
        ("⚠️ Anonymize", s.anonymize),
        ("⚠️ Admin rights granted", s.admin_grants),
        ("⏭️ Skipped records", s.skipped),
        ("🗓️ Scheduled joiners", s.scheduled),
    ] {
        let _ = writeln!(head, "| {label} | {count} |");
    }
    head.push('\n');
    if plan.safety.blocked {
        let _ = writeln!(
            head,
            "⛔ **Blocked by a safety threshold:** {}. To apply exactly this plan: `speakap-sync apply --force {}`\n",
            inline(&plan.safety.violations.join("; ")),
            plan.checksum()
        );
    } else {
        let accounts = match plan.safety.managed_users {
            1 => "1 managed account".to_string(),
            n => format!("{n} managed accounts"),
        };
        let _ = writeln!(head, "✅ **Safety:** within the thresholds ({accounts}).\n");
    }
    let config = match &plan.config_commit {
        Some(commit) => format!("commit `{}`", short(commit)),
        None => "uncommitted files (not applicable)".into(),
    };
    let _ = writeln!(
        head,
        "**Config** {config} · **HR snapshot** {}, {}, sha256 `{}` · **Network** {} · **As of** {} · **Checksum** `{}`\n",
        code(&plan.hr.source),
        hr_count(&plan.hr),
        &plan.hr.sha256[..plan.hr.sha256.len().min(12)],
        network_count(&plan.network_read),
        plan.as_of,
        plan.checksum()
    );
    if let Some(impact) = options.impact {
        render_impact(&mut head, impact, plan);
    }

    head
}

/// As many sections, and lines of the last one, as `budget` holds, then the names of the
/// sections left out; whether anything was left out.
fn fit_sections(sections: Vec<Section>, budget: usize, unit: Unit) -> (String, bool) {
    let mut body = String::new();
    let mut used = 0;
    let mut truncated = false;
    let mut omitted = Vec::new();
    for section in sections {
        let open = format!("<details><summary>{}</summary>\n\n", section.summary);
        let close = "\n</details>\n\n";
        let overhead = unit.len(&open) + close.len() + 80;
        if truncated || used + overhead > budget {
            truncated = true;
            omitted.push(section.summary);
            continue;
        }
        body.push_str(&open);
        used += overhead;
        let total = section.lines.len();
        for (shown, line) in section.lines.iter().enumerate() {
            let length = unit.len(line) + 1;
            if used + length > budget {
                truncated = true;
                let _ = writeln!(body, "\n_… and {} more not shown_", total - shown);
                break;
            }
            used += length;
            body.push_str(line);
            body.push('\n');
        }
        body.push_str(close);
    }
    if !omitted.is_empty() {
        let mut line = format!("_Not shown: {}_\n", omitted.join(", "));
        if unit.len(&line) > OMITTED_RESERVE {
            line = format!("_Not shown: {} more sections_\n", omitted.len());
        }
        body.push_str(&line);
    }
    (body, truncated)
}

fn render_impact(out: &mut String, impact: &Impact, plan: &Plan) {
    let _ = writeln!(
        out,
        "#### What this config change does (compared with `{}`)\n",
        short(&impact.base_commit)
    );
    if impact.changed_files.is_empty() {
        let _ = writeln!(out, "No config files changed.\n");
    } else {
        let files: Vec<String> = impact
            .changed_files
            .iter()
            .map(|f| {
                format!(
                    "{} ({})",
                    code(&f.path),
                    format!("{:?}", f.change).to_lowercase()
                )
            })
            .collect();
        let _ = writeln!(out, "Changed files: {}\n", files.join(", "));
    }
    if impact.effects.is_empty() {
        let _ = writeln!(
            out,
            "The change does not alter what anyone in the HR record gets.\n"
        );
    } else {
        for effect in &impact.effects {
            let mark = if effect.needs_care() { "⚠️ " } else { "" };
            let _ = writeln!(out, "- {mark}This change {}", inline(&effect.sentence()));
        }
        let _ = writeln!(
            out,
            "\nWith the base config the plan would be: {}. With this change: {}.\n",
            impact.base_summary.line(),
            plan.summary.line()
        );
    }
}

/// Breaks what GitHub recognises in plain text after rendering (a mention, an issue
/// reference, an autolink) without changing what a reader sees.
const ZERO_WIDTH_SPACE: char = '\u{200b}';

/// Untrusted text as Markdown inline content that renders as exactly that text: on one line
/// (control characters shown escaped, see [`inert`]), every ASCII punctuation character
/// backslash-escaped (no emphasis, link, image, HTML, entity, code, math, table cell,
/// strikethrough, footnote or task box can start), and a zero-width space after `@`, `#`, `:`
/// and `www` (no `@mention`, `#123` reference, `https://` or `www.` autolink, `mailto:` or
/// address autolink).
pub fn inline(text: &str) -> String {
    let text = inert(text);
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
        let breaks = matches!(c, '@' | '#' | ':')
            || (matches!(c, 'w' | 'W')
                && chars.peek() == Some(&'.')
                && out.len() >= 3
                && out.as_bytes()[out.len() - 3..].eq_ignore_ascii_case(b"www"));
        if breaks {
            out.push(ZERO_WIDTH_SPACE);
        }
    }
    out
}

/// Untrusted text as a Markdown code span: literal, on one line, whatever backticks it holds.
pub fn code(text: &str) -> String {
    let text = inert(text);
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // CommonMark strips one space from each side when both are there, and a backtick at an
    // edge would join the fence.
    let pad = if text.starts_with('`') || text.ends_with('`') || text.starts_with(' ') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn value(field: ProfileField, text: &str, redact: bool) -> String {
    match field {
        _ if text.is_empty() => "(empty)".into(),
        ProfileField::Email if redact => inline(&mask_email(text)),
        ProfileField::Phone if redact => inline(&mask_phone(text)),
        _ if redact => inline(&mask_contacts_in(text)),
        _ => inline(text),
    }
}

/// An XID as shown: it may be an email address, or not a code at all (a whole row read as one
/// value when the export's rows are split differently from its header).
fn xid(text: &str, redact: bool) -> String {
    if redact {
        inline(&mask_identifier(text))
    } else {
        inline(text)
    }
}

/// Free text from data (a name, a reason naming a value, a warning): a person without a name is
/// shown by their address, and a value may hold a phone number.
fn shown(text: &str, redact: bool) -> String {
    if redact {
        inline(&mask_contacts_in(text))
    } else {
        inline(text)
    }
}

/// A person's XID and name, and the contracts of one merged from several.
fn person(user: &UserPlan, locator: &Locator, redact: bool) -> String {
    let contracts = match user.contracts.len() {
        0 | 1 => String::new(),
        _ => format!(" ({})", inline(&locator.contracts(&user.contracts))),
    };
    format!(
        "**{}** {}{contracts}",
        xid(&user.xid, redact),
        shown(&user.name, redact)
    )
}

fn change_line(change: &Change, redact: bool) -> Option<String> {
    let warn = if change.grants_admin() { "⚠️ " } else { "" };
    Some(match change {
        Change::SetXid {
            from: Some(from),
            to,
        } => format!("XID {} → {}", xid(from, redact), xid(to, redact)),
        Change::SetXid { from: None, .. } => return None,
        Change::SetProfile {
            field, from, to, ..
        } => format!(
            "`{}`: {} → {}",
            field.name(),
            value(*field, from, redact),
            value(*field, to, redact)
        ),
        Change::AddMembership {
            group, kind, admin, ..
        } => {
            let role = if *admin { " as local admin" } else { "" };
            format!("{warn}+ {} {}{role}", kind.label(), inline(group))
        }
        Change::RemoveMembership { group, .. } => format!("− {}", inline(group)),
        Change::SetGroupAdmin {
            group, admin: true, ..
        } => format!("{warn}+ local admin of {}", inline(group)),
        Change::SetGroupAdmin {
            group,
            admin: false,
            ..
        } => format!("− local admin of {}", inline(group)),
        Change::SetNetworkRole { from, to, .. } => {
            format!(
                "{warn}network role {} → {}",
                inline(&from.to_string()),
                to.as_str()
            )
        }
        Change::SetPrimaryBusinessUnit { to, .. } => {
            format!("primary business unit → {}", inline(to))
        }
    })
}

fn sections(plan: &Plan, redact: bool) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut push = |summary: String, lines: Vec<String>| {
        if !lines.is_empty() {
            sections.push(Section { summary, lines });
        }
    };
    // The riskiest first: if the plan has to be cut, offboarding is what stays visible.
    for (action, label) in [
        (UserAction::Suspend, "⚠️ Suspend"),
        (UserAction::Delete, "⚠️ Delete"),
        (UserAction::Anonymize, "⚠️ Anonymize"),
    ] {
        let lines = offboarding_lines(plan, action, redact);
        push(format!("{label} ({})", lines.len()), lines);
    }
    for (action, label) in [
        (UserAction::Update, "✏️ Update"),
        (UserAction::Restore, "♻️ Restore"),
        (UserAction::Invite, "➕ Invite"),
    ] {
        let count = plan.users.iter().filter(|u| u.action == action).count();
        push(
            format!("{label} ({count})"),
            change_lines(plan, action, redact),
        );
    }
    push(
        format!(
            "⏭️ Skipped records ({}): their accounts are left untouched",
            plan.skipped.len()
        ),
        skipped_lines(plan, redact),
    );
    push(
        format!("🗓️ Scheduled ({})", plan.scheduled.len()),
        scheduled_lines(plan, redact),
    );
    push(
        format!("Leaving ({}): suspended, recoverable", plan.leaving.len()),
        leaving_lines(plan, redact),
    );
    push(
        format!(
            "Deleted outside sync ({}): not recreated",
            plan.deleted_outside.len()
        ),
        plan.deleted_outside
            .iter()
            .map(|d| format!("- **{}** {}", xid(&d.xid, redact), shown(&d.name, redact)))
            .collect(),
    );
    push(
        format!("Unmanaged ({})", plan.unmanaged.len()),
        unmanaged_lines(plan, redact),
    );
    push(
        format!("Warnings ({})", plan.warnings.len()),
        plan.warnings
            .iter()
            .map(|w| format!("- {}", shown(w, redact)))
            .collect(),
    );
    sections
}

fn offboarding_lines(plan: &Plan, action: UserAction, redact: bool) -> Vec<String> {
    plan.users
        .iter()
        .filter(|u| u.action == action)
        .map(|u| {
            format!(
                "- ⚠️ {}: {}",
                person(u, &plan.hr.locator, redact),
                shown(u.reason.as_deref().unwrap_or_default(), redact)
            )
        })
        .collect()
}

/// Updates and restores: a line per person with their reason and changes below it. Invitees:
/// one line each, their groups and role; their profile is the HR row.
fn change_lines(plan: &Plan, action: UserAction, redact: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for user in plan.users.iter().filter(|u| u.action == action) {
        let warn = if user.changes.iter().any(Change::grants_admin) {
            "⚠️ "
        } else {
            ""
        };
        if action == UserAction::Invite {
            let groups: Vec<String> = user
                .changes
                .iter()
                .filter(|c| {
                    matches!(
                        c,
                        Change::AddMembership { .. } | Change::SetNetworkRole { .. }
                    )
                })
                .filter_map(|c| change_line(c, redact))
                .collect();
            lines.push(format!(
                "- {warn}{}: {}",
                person(user, &plan.hr.locator, redact),
                groups.join(", ")
            ));
        } else {
            lines.push(format!(
                "- {warn}{}",
                person(user, &plan.hr.locator, redact)
            ));
            if let Some(reason) = &user.reason {
                lines.push(format!("  - _{}_", shown(reason, redact)));
            }
            let changes = user.changes.iter().filter_map(|c| change_line(c, redact));
            lines.extend(changes.map(|c| format!("  - {c}")));
        }
    }
    lines
}

fn scheduled_lines(plan: &Plan, redact: bool) -> Vec<String> {
    plan.scheduled
        .iter()
        .map(|s| {
            format!(
                "- **{}** {}: {} on {}",
                xid(&s.xid, redact),
                shown(&s.name, redact),
                if s.restore { "restored" } else { "invited" },
                s.invite_on
            )
        })
        .collect()
}

fn leaving_lines(plan: &Plan, redact: bool) -> Vec<String> {
    plan.leaving
        .iter()
        .map(|l| {
            format!(
                "- **{}** {}: suspended since {}, {} on {}",
                xid(&l.xid, redact),
                shown(&l.name, redact),
                l.suspended_since,
                l.then.past_tense(),
                l.on
            )
        })
        .collect()
}

fn skipped_lines(plan: &Plan, redact: bool) -> Vec<String> {
    plan.skipped
        .iter()
        .map(|s| {
            let who = s.xid.as_deref().map_or_else(
                || "no XID".to_string(),
                |x| format!("XID {}", xid(x, redact)),
            );
            format!(
                "- {} {who}: {}",
                code(&format!("{}:{}", plan.hr.source, s.line)),
                shown(&s.reasons.join("; "), redact)
            )
        })
        .collect()
}

fn unmanaged_lines(plan: &Plan, redact: bool) -> Vec<String> {
    plan.unmanaged
        .iter()
        .map(|u| {
            let who = if u.xid.is_empty() {
                format!("eid {}", inline(&u.eid))
            } else {
                xid(&u.xid, redact)
            };
            format!("- **{who}** {}", shown(&u.reason, redact))
        })
        .collect()
}
