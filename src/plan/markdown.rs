//! The plan as Markdown for pull-request comments and job summaries: a summary table that always
//! stays, sections per kind of operation inside `<details>`, ⚠ on admin grants and offboarding,
//! personal contact data masked unless asked otherwise, and never longer than the limit (detail
//! is cut, with a note saying where the full plan is).

use std::fmt::Write;

use super::impact::Impact;
use super::render::{hr_count, network_count};
use super::{Change, Plan, UserAction, UserPlan};
use crate::config::repo::short;
use crate::desired::ProfileField;
use crate::redact::{mask_email, mask_emails_in, mask_phone};

/// GitHub refuses issue comments longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

pub struct MarkdownOptions<'a> {
    /// Mask email addresses and phone numbers.
    pub redact: bool,
    /// Maximum length in characters.
    pub limit: usize,
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
    let mut head = String::new();
    if let Some(marker) = options.marker {
        let _ = writeln!(head, "{marker}");
    }
    let _ = writeln!(head, "### speakap-sync plan · network `{}`\n", plan.network);
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
            plan.safety.violations.join("; "),
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
        "**Config** {config} · **HR snapshot** `{}`, {}, sha256 `{}` · **Network** {} · **As of** {} · **Checksum** `{}`\n",
        plan.hr.source,
        hr_count(&plan.hr),
        &plan.hr.sha256[..plan.hr.sha256.len().min(12)],
        network_count(&plan.network_read),
        plan.as_of,
        plan.checksum()
    );
    if let Some(impact) = options.impact {
        render_impact(&mut head, impact, plan);
    }

    let sections = sections(plan, options.redact);
    let truncated_note = format!(
        "\n> ✂️ This plan is too long for a comment and was cut. The full plan: {}.\n",
        options.full_plan
    );
    // Room kept for naming the sections that did not fit.
    const OMITTED_RESERVE: usize = 400;
    let budget = options
        .limit
        .saturating_sub(head.chars().count() + truncated_note.chars().count() + OMITTED_RESERVE);
    let mut body = String::new();
    let mut used = 0;
    let mut truncated = false;
    let mut omitted = Vec::new();
    for section in sections {
        let open = format!("<details><summary>{}</summary>\n\n", section.summary);
        let close = "\n</details>\n\n";
        let overhead = open.chars().count() + close.len() + 80;
        if truncated || used + overhead > budget {
            truncated = true;
            omitted.push(section.summary);
            continue;
        }
        body.push_str(&open);
        used += overhead;
        let total = section.lines.len();
        for (shown, line) in section.lines.iter().enumerate() {
            let length = line.chars().count() + 1;
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
        if line.chars().count() > OMITTED_RESERVE {
            line = format!("_Not shown: {} more sections_\n", omitted.len());
        }
        body.push_str(&line);
    }
    let mut out = head;
    out.push_str(&body);
    if truncated {
        out.push_str(&truncated_note);
    }
    out
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
            .map(|f| format!("`{}` ({:?})", f.path, f.change).to_lowercase())
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
            let _ = writeln!(out, "- {mark}This change {}", effect.sentence());
        }
        let _ = writeln!(
            out,
            "\nWith the base config the plan would be: {}. With this change: {}.\n",
            impact.base_summary.line(),
            plan.summary.line()
        );
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '|' | '<' | '>' | '[' | ']' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn value(field: ProfileField, text: &str, redact: bool) -> String {
    match field {
        _ if text.is_empty() => "(empty)".into(),
        ProfileField::Email if redact => mask_email(text),
        ProfileField::Phone if redact => mask_phone(text),
        _ => text.to_string(),
    }
}

/// An XID or a name as shown: an XID may be an email address, and a person without a name is
/// shown by their address.
fn shown(text: &str, redact: bool) -> String {
    escape(&if redact {
        mask_emails_in(text)
    } else {
        text.to_string()
    })
}

fn person(user: &UserPlan, redact: bool) -> String {
    format!(
        "**{}** {}",
        shown(&user.xid, redact),
        shown(&user.name, redact)
    )
}

fn change_line(change: &Change, redact: bool) -> Option<String> {
    let warn = if change.grants_admin() { "⚠️ " } else { "" };
    Some(match change {
        Change::SetXid {
            from: Some(from),
            to,
        } => format!("XID {} → {}", escape(from), escape(to)),
        Change::SetXid { from: None, .. } => return None,
        Change::SetProfile {
            field, from, to, ..
        } => format!(
            "`{}`: {} → {}",
            field.name(),
            escape(&value(*field, from, redact)),
            escape(&value(*field, to, redact))
        ),
        Change::AddMembership {
            group, kind, admin, ..
        } => {
            let role = if *admin { " as local admin" } else { "" };
            format!("{warn}+ {} {}{role}", kind.label(), escape(group))
        }
        Change::RemoveMembership { group, .. } => format!("− {}", escape(group)),
        Change::SetGroupAdmin {
            group, admin: true, ..
        } => format!("{warn}+ local admin of {}", escape(group)),
        Change::SetGroupAdmin {
            group,
            admin: false,
            ..
        } => format!("− local admin of {}", escape(group)),
        Change::SetNetworkRole { from, to, .. } => {
            format!("{warn}network role {from} → {}", to.as_str())
        }
        Change::SetPrimaryBusinessUnit { to, .. } => {
            format!("primary business unit → {}", escape(to))
        }
    })
}

fn sections(plan: &Plan, redact: bool) -> Vec<Section> {
    let mut sections = Vec::new();
    let of = |action: UserAction| plan.users.iter().filter(move |u| u.action == action);
    // The riskiest first: if the plan has to be cut, offboarding is what stays visible.
    for (action, label) in [
        (UserAction::Suspend, "⚠️ Suspend"),
        (UserAction::Delete, "⚠️ Delete"),
        (UserAction::Anonymize, "⚠️ Anonymize"),
    ] {
        let lines: Vec<String> = of(action)
            .map(|u| {
                format!(
                    "- ⚠️ {}: {}",
                    person(u, redact),
                    escape(u.reason.as_deref().unwrap_or_default())
                )
            })
            .collect();
        if !lines.is_empty() {
            sections.push(Section {
                summary: format!("{label} ({})", lines.len()),
                lines,
            });
        }
    }
    for (action, label) in [
        (UserAction::Update, "✏️ Update"),
        (UserAction::Restore, "♻️ Restore"),
        (UserAction::Invite, "➕ Invite"),
    ] {
        let mut lines = Vec::new();
        for user in of(action) {
            let changes: Vec<String> = user
                .changes
                .iter()
                .filter_map(|c| change_line(c, redact))
                .collect();
            let warn = if user.changes.iter().any(Change::grants_admin) {
                "⚠️ "
            } else {
                ""
            };
            if action == UserAction::Invite {
                // Invitees: one line each; their profile is the HR row.
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
                    person(user, redact),
                    groups.join(", ")
                ));
            } else {
                lines.push(format!("- {warn}{}", person(user, redact)));
                if let Some(reason) = &user.reason {
                    lines.push(format!("  - _{}_", escape(reason)));
                }
                lines.extend(changes.into_iter().map(|c| format!("  - {c}")));
            }
        }
        let count = of(action).count();
        if count > 0 {
            sections.push(Section {
                summary: format!("{label} ({count})"),
                lines,
            });
        }
    }
    let mut push = |summary: String, lines: Vec<String>| {
        if !lines.is_empty() {
            sections.push(Section { summary, lines });
        }
    };
    push(
        format!(
            "⏭️ Skipped records ({}): their accounts are left untouched",
            plan.skipped.len()
        ),
        plan.skipped
            .iter()
            .map(|s| {
                let who = s.xid.as_deref().map_or_else(
                    || "no XID".to_string(),
                    |x| format!("XID {}", shown(x, redact)),
                );
                format!(
                    "- `{}:{}` {who}: {}",
                    plan.hr.source,
                    s.line,
                    escape(&s.reasons.join("; "))
                )
            })
            .collect(),
    );
    push(
        format!("🗓️ Scheduled ({})", plan.scheduled.len()),
        plan.scheduled
            .iter()
            .map(|s| {
                format!(
                    "- **{}** {}: {} on {}",
                    shown(&s.xid, redact),
                    shown(&s.name, redact),
                    if s.restore { "restored" } else { "invited" },
                    s.invite_on
                )
            })
            .collect(),
    );
    push(
        format!("Leaving ({}): suspended, recoverable", plan.leaving.len()),
        plan.leaving
            .iter()
            .map(|l| {
                format!(
                    "- **{}** {}: suspended since {}, {} on {}",
                    shown(&l.xid, redact),
                    shown(&l.name, redact),
                    l.suspended_since,
                    l.then.past_tense(),
                    l.on
                )
            })
            .collect(),
    );
    push(
        format!(
            "Deleted outside sync ({}): not recreated",
            plan.deleted_outside.len()
        ),
        plan.deleted_outside
            .iter()
            .map(|d| format!("- **{}** {}", shown(&d.xid, redact), shown(&d.name, redact)))
            .collect(),
    );
    push(
        format!("Unmanaged ({})", plan.unmanaged.len()),
        plan.unmanaged
            .iter()
            .map(|u| format!("- **{}** {}", shown(&u.label(), redact), escape(&u.reason)))
            .collect(),
    );
    push(
        format!("Warnings ({})", plan.warnings.len()),
        plan.warnings
            .iter()
            .map(|w| format!("- {}", escape(w)))
            .collect(),
    );
    sections
}
