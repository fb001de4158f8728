//! Plan renderers: a readable text plan for people and JSON for machines.

use similar::{ChangeTag, TextDiff};

use super::impact::Impact;
use super::{Change, Plan, UserAction, UserPlan};
use crate::config::repo::short;
use crate::hr::{Locator, SnapshotInfo};
use crate::output::Paint;
use crate::resolve::{ProfileField, Provenance};
use crate::speakap::NetworkRead;
use crate::text::{counted, inert};

pub use super::saved::{SavedPlan, json};

/// What the config change alone does, for the text plan.
pub fn impact_text(impact: &Impact, plan: &Plan, paint: Paint) -> String {
    let mut out = paint.bold(&format!(
        "Config change since {}\n",
        short(&impact.base_commit)
    ));
    for file in &impact.changed_files {
        out.push_str(&format!(
            "  {}: {}\n",
            format!("{:?}", file.change).to_lowercase(),
            inert(&file.path)
        ));
    }
    if impact.effects.is_empty() {
        out.push_str("  the change does not alter what anyone in the HR record gets\n");
    }
    for effect in &impact.effects {
        let mark = if effect.needs_care() {
            paint.yellow("⚠")
        } else {
            " ".into()
        };
        out.push_str(&format!(
            "  {mark} this change {}\n",
            inert(&effect.sentence())
        ));
    }
    out.push_str(&format!(
        "  plan with the base config: {}\n  plan with this change:     {}\n\n",
        impact.base_summary.line(),
        plan.summary.line()
    ));
    out
}

/// The message for a blocked plan, naming the checksum that `--force` must repeat.
pub fn blocked_message(plan: &Plan, checksum: &str) -> String {
    format!(
        "{}; to allow exactly this plan run `speakap-sync apply --force {checksum}`",
        inert(&plan.safety.violations.join("; ")),
    )
}

/// The thresholds the plan breaks, one a line, and the reviewed way past them.
fn blocked_section(out: &mut String, plan: &Plan, checksum: &str, paint: Paint) {
    out.push_str(&format!(
        "{}\n",
        paint.red("Blocked by a safety threshold:")
    ));
    for violation in &plan.safety.violations {
        out.push_str(&format!("  {}\n", inert(violation)));
    }
    out.push_str(&format!(
        "  To apply exactly this plan once reviewed: speakap-sync apply --force {checksum}\n\n"
    ));
}

/// `12 records`, or `12 records in 3 pages` from a paged source.
pub(crate) fn hr_count(hr: &SnapshotInfo) -> String {
    match hr.pages {
        Some(pages) => format!(
            "{} records in {}",
            hr.records,
            counted(pages as usize, "page", "pages")
        ),
        None => format!("{} records", hr.records),
    }
}

/// `56 accounts in 1 page, 12 groups in 1 page`.
pub(crate) fn network_count(read: &NetworkRead) -> String {
    format!(
        "{} in {}, {} in {}",
        counted(read.accounts, "account", "accounts"),
        counted(read.account_pages, "page", "pages"),
        counted(read.groups, "group", "groups"),
        counted(read.group_pages, "page", "pages")
    )
}

pub fn text(plan: &Plan, paint: Paint) -> String {
    let mut out = text_head(plan, paint);
    for action in [
        UserAction::Invite,
        UserAction::Restore,
        UserAction::Update,
        UserAction::Suspend,
        UserAction::Delete,
        UserAction::Anonymize,
    ] {
        for user in plan.users.iter().filter(|u| u.action == action) {
            render_user(&mut out, user, &plan.hr.locator, paint);
        }
    }
    if !plan.users.is_empty() {
        out.push('\n');
    }
    people_lists(&mut out, plan, paint);
    record_lists(&mut out, plan, paint);
    // Encoding the plan for its checksum is the costliest step of rendering a large plan.
    let checksum = plan.checksum();
    if plan.safety.blocked {
        blocked_section(&mut out, plan, &checksum, paint);
    }
    if plan.summary.has_changes() {
        out.push_str(&paint.bold(&format!("Plan: {}.\n", plan.summary.line())));
    } else {
        out.push_str(&paint.bold(&format!(
            "No changes: the network matches the HR record ({} record{} skipped).\n",
            plan.summary.skipped,
            if plan.summary.skipped == 1 { "" } else { "s" }
        )));
    }
    out.push_str(&format!("Checksum: {checksum}\n"));
    out
}

/// The network, the config commit, the HR snapshot and the day the plan is for.
fn text_head(plan: &Plan, paint: Paint) -> String {
    let mut out = String::new();
    out.push_str(&paint.bold(&format!(
        "Plan for network {} ({})\n",
        plan.network,
        network_count(&plan.network_read)
    )));
    match &plan.config_commit {
        Some(commit) => out.push_str(&format!("  config: commit {}\n", short(commit))),
        None => out.push_str(&format!(
            "  config: {}\n",
            paint.yellow(
                "working tree (uncommitted): this plan cannot be applied; commit the config first"
            )
        )),
    }
    out.push_str(&format!(
        "  HR:     {}{} ({}, sha256 {})\n  as of:  {}\n\n",
        inert(&plan.hr.source),
        plan.hr
            .modified
            .as_deref()
            .map(|m| format!(", modified {}", inert(m)))
            .unwrap_or_default(),
        hr_count(&plan.hr),
        &plan.hr.sha256[..12.min(plan.hr.sha256.len())],
        plan.as_of
    ));
    out
}

/// A list under its heading, indented, with a blank line after it; nothing when empty.
fn list(out: &mut String, paint: Paint, heading: String, lines: Vec<String>) {
    if !lines.is_empty() {
        out.push_str(&paint.bold(&heading));
        for line in lines {
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
    }
}

/// Scheduled joiners, leavers in their grace period, and accounts deleted by hand.
fn people_lists(out: &mut String, plan: &Plan, paint: Paint) {
    let locator = &plan.hr.locator;
    list(
        out,
        paint,
        format!(
            "Scheduled ({}): start date still to come\n",
            plan.scheduled.len()
        ),
        plan.scheduled
            .iter()
            .map(|s| {
                let what = if s.restore { "restore" } else { "invite" };
                let (xid, name) = (inert(&s.xid), inert(&s.name));
                let line = locator.short(s.line);
                format!("{xid} {name}  {what} on {}  (HR {line})", s.invite_on)
            })
            .collect(),
    );
    list(
        out,
        paint,
        format!(
            "Leaving ({}): suspended, recoverable until the grace period ends\n",
            plan.leaving.len()
        ),
        plan.leaving
            .iter()
            .map(|l| {
                let then = l.then.past_tense();
                let (xid, name) = (inert(&l.xid), inert(&l.name));
                format!(
                    "{xid} {name}  suspended since {}, {then} on {}",
                    l.suspended_since, l.on
                )
            })
            .collect(),
    );
    list(
        out,
        paint,
        format!(
            "Deleted outside sync ({}): not recreated until their HR record or the rules' outcome changes, or an override says restore: true\n",
            plan.deleted_outside.len()
        ),
        plan.deleted_outside
            .iter()
            .map(|d| {
                let (xid, name) = (inert(&d.xid), inert(&d.name));
                format!("{xid} {name}  (HR {})", locator.short(d.line))
            })
            .collect(),
    );
}

/// Skipped records, unmanaged accounts and warnings.
fn record_lists(out: &mut String, plan: &Plan, paint: Paint) {
    list(
        out,
        paint,
        format!(
            "Skipped records ({}): not processed; their accounts are left untouched\n",
            plan.skipped.len()
        ),
        plan.skipped
            .iter()
            .map(|s| {
                let who = s
                    .xid
                    .as_deref()
                    .map_or_else(|| "no XID".to_string(), |x| format!("XID {}", inert(x)));
                let at = inert(&plan.hr.origin(s.line).to_string()).into_owned();
                format!("{at}  {who}: {}", inert(&s.reasons.join("; ")))
            })
            .collect(),
    );
    list(
        out,
        paint,
        format!(
            "Unmanaged ({}): in the network, left alone\n",
            plan.unmanaged.len()
        ),
        plan.unmanaged
            .iter()
            .map(|u| {
                let who = if u.xid.is_empty() {
                    format!("({})", inert(&u.label()))
                } else {
                    inert(&u.label()).into_owned()
                };
                format!("{who}  {}", inert(&u.reason))
            })
            .collect(),
    );
    list(
        out,
        paint,
        format!("Warnings ({})\n", plan.warnings.len()),
        plan.warnings
            .iter()
            .map(|w| format!("{} {}", paint.yellow("!"), inert(w)))
            .collect(),
    );
}

pub(crate) fn render_user(out: &mut String, user: &UserPlan, locator: &Locator, paint: Paint) {
    let (sign, verb) = match user.action {
        UserAction::Invite => (paint.green("+"), "invite"),
        UserAction::Update => (paint.yellow("~"), "update"),
        UserAction::Restore => (paint.green("+"), "restore"),
        UserAction::Suspend => (paint.red("-"), "suspend"),
        UserAction::Delete => (paint.red("-"), "delete"),
        UserAction::Anonymize => (paint.red("-"), "anonymize"),
    };
    let mut about = Vec::new();
    if let Some(eid) = &user.eid {
        about.push(format!("eid {eid}"));
    }
    if user.contracts.len() > 1 {
        about.push(format!("HR {}", locator.contracts(&user.contracts)));
    } else if let Some(line) = user.line {
        about.push(format!("HR {}", locator.short(line)));
    }
    let about = if about.is_empty() {
        String::new()
    } else {
        paint.dim(&format!("  ({})", about.join(", ")))
    };
    out.push_str(&format!(
        "{sign} {verb} {} {}{about}\n",
        inert(&user.xid),
        inert(&user.name)
    ));
    if let Some(reason) = &user.reason {
        out.push_str(&format!("      {}\n", inert(reason)));
    }
    render_profile_diff(out, user, locator, paint);
    for change in &user.changes {
        let Some(line) = change_line(change, locator, paint) else {
            continue;
        };
        let marker = if change.grants_admin() {
            paint.yellow("⚠")
        } else {
            " ".to_string()
        };
        out.push_str(&format!("    {marker} {line}\n"));
    }
}

/// A membership or role change as a line; profile and XID changes are shown as a diff instead.
fn change_line(change: &Change, locator: &Locator, paint: Paint) -> Option<String> {
    let line = match change {
        Change::SetXid { .. } | Change::SetProfile { .. } => return None,
        Change::AddMembership {
            group,
            kind,
            admin,
            source,
            ..
        } => {
            let role = if *admin { " as local admin" } else { "" };
            format!(
                "{} {} \"{}\"{role}  {}",
                paint.green("+"),
                kind.label(),
                inert(group),
                paint.dim(&inert(&source.describe(locator)))
            )
        }
        Change::RemoveMembership { group, source, .. } => {
            format!(
                "{} group \"{}\"  {}",
                paint.red("-"),
                inert(group),
                paint.dim(&describe(source))
            )
        }
        Change::SetGroupAdmin {
            group,
            admin: true,
            source,
            ..
        } => {
            format!(
                "{} local admin of \"{}\"  {}",
                paint.green("+"),
                inert(group),
                paint.dim(&describe(source))
            )
        }
        Change::SetGroupAdmin {
            group,
            admin: false,
            ..
        } => {
            format!(
                "{} local admin of \"{}\"  {}",
                paint.red("-"),
                inert(group),
                paint.dim("granted by the sync, no longer desired")
            )
        }
        Change::SetPrimaryBusinessUnit {
            from, to, source, ..
        } => {
            let was = from
                .as_ref()
                .map_or(String::new(), |f| format!(" (was \"{}\")", inert(f)));
            format!(
                "{} primary business unit \"{}\"{was}  {}",
                paint.yellow("~"),
                inert(to),
                paint.dim(&inert(&source.to_string()))
            )
        }
        Change::SetNetworkRole { from, to, source } => {
            format!(
                "{} network role {} → {}  {}",
                paint.yellow("~"),
                inert(&from.to_string()),
                to.as_str(),
                paint.dim(&describe(source))
            )
        }
    };
    Some(line)
}

fn describe(source: &Option<Provenance>) -> String {
    source.as_ref().map_or_else(
        || "granted by the sync, no longer desired".into(),
        |source| inert(&source.to_string()).into_owned(),
    )
}

/// Current vs desired profile as a line diff, each added line annotated with where its value comes from.
fn render_profile_diff(out: &mut String, user: &UserPlan, locator: &Locator, paint: Paint) {
    let mut current = String::new();
    let mut desired = String::new();
    let mut sources = Vec::new();
    for change in &user.changes {
        match change {
            Change::SetXid { from, to } => {
                if let Some(from) = from {
                    current.push_str(&format!("xid: {}\n", inert(from)));
                }
                desired.push_str(&format!("xid: {}\n", inert(to)));
                let note = match user.action {
                    UserAction::Update => "account found by its email address",
                    _ => "",
                };
                sources.push(("xid".to_string(), note.to_string()));
            }
            Change::SetProfile {
                field,
                from,
                to,
                source,
            } => {
                if !from.is_empty() {
                    current.push_str(&format!("{}: {}\n", field.name(), inert(from)));
                }
                desired.push_str(&format!("{}: {}\n", field.name(), shown(*field, to)));
                // The header already names the HR line; only other sources (overrides) are worth a note.
                let from_own_line =
                    matches!(source, Provenance::Hr { line, .. } if Some(*line) == user.line);
                let note = if from_own_line {
                    String::new()
                } else {
                    inert(&source.describe(locator)).into_owned()
                };
                sources.push((field.name().to_string(), note));
            }
            _ => {}
        }
    }
    if desired.is_empty() {
        return;
    }
    let diff = TextDiff::from_lines(&current, &desired);
    for change in diff.iter_all_changes() {
        let text = change.value().trim_end_matches('\n');
        match change.tag() {
            ChangeTag::Delete => {
                out.push_str(&format!("      {}\n", paint.red(&format!("- {text}"))))
            }
            ChangeTag::Insert => {
                let field = text.split(':').next().unwrap_or_default();
                let source = sources
                    .iter()
                    .find(|(f, _)| f == field)
                    .map(|(_, s)| s.as_str())
                    .unwrap_or_default();
                let note = if source.is_empty() {
                    String::new()
                } else {
                    format!("  {}", paint.dim(source))
                };
                out.push_str(&format!(
                    "      {}{note}\n",
                    paint.green(&format!("+ {text}"))
                ));
            }
            ChangeTag::Equal => {}
        }
    }
}

fn shown(field: ProfileField, value: &str) -> String {
    if value.is_empty() && field != ProfileField::Email {
        "(empty)".into()
    } else {
        inert(value).into_owned()
    }
}
