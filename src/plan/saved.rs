//! The plan as JSON, format 2: what `plan --format json` prints, `plan --out` writes, and
//! `apply --plan` and the apply journal read back. Each provenance is named once, in `sources`,
//! and a change refers to it by index; an HR value's line is the person's own and is written
//! only where it differs (`hr_line`). Values a change starts from are left out when empty (an
//! invitee has none), and so are an invitee's missing EID and `admin: false`. The document is
//! indented down to its lists and no deeper: one person, source or skipped record per line.
//!
//! The checksum is the sha256 of the compact encoding without checksum and impact, so it
//! identifies exactly the plan. Format 1 (every provenance written out in full, the checksum over
//! `Plan`'s own serialization) is still read: its checksum is checked the old way, and the plan
//! is then the same as a format 2 plan of the same decisions.

use std::borrow::Cow;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::impact::Impact;
use super::{
    Change, DeletedOutside, FORMAT_VERSION, Invitation, Leaving, Plan, SafetyVerdict, Scheduled,
    Summary, Unmanaged, UserAction, UserPlan,
};
use crate::config::{NetworkRole, Origin};
use crate::desired::{
    MappingSource, MembershipKind, ProfileField, Provenance, RuleList, SkippedRecord,
};
use crate::hr::SnapshotInfo;
use crate::speakap::NetworkRead;

/// The plan as JSON with its checksum, and what the config change alone does (not covered by
/// the checksum: it is a comparison, not something apply does).
pub fn json(plan: &Plan, impact: Option<&Impact>) -> String {
    let mut document = Document::encode(plan);
    document.checksum = Some(Cow::Owned(document.checksum()));
    document.impact = impact.map(Cow::Borrowed);
    let mut out = Vec::with_capacity(plan.users.len() * 512 + 4096);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Outline::new(2));
    document
        .serialize(&mut serializer)
        .expect("a plan serializes");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// sha256 of the plan's canonical (compact, format 2) JSON.
pub(super) fn checksum(plan: &Plan) -> String {
    Document::encode(plan).checksum()
}

/// A plan read back from `plan --out` (for `apply --plan`) or from an apply's journal, with the
/// checksum it states for itself.
pub struct SavedPlan {
    pub checksum: String,
    pub plan: Plan,
}

impl SavedPlan {
    /// Reads format 2, or format 1 (checked against its own checksum, then carried over: a
    /// format 1 file that was edited keeps the checksum it states, which the plan no longer has).
    pub fn parse(text: &str) -> Result<SavedPlan, String> {
        match serde_json::from_str::<Document>(text) {
            Ok(document) if document.format_version == FORMAT_VERSION => document.decode(),
            Ok(document) => Err(unknown_version(document.format_version)),
            Err(e) => match probe_version(text) {
                Some(1) => read_format_1(text),
                Some(FORMAT_VERSION) | None => Err(e.to_string()),
                Some(version) => Err(unknown_version(version)),
            },
        }
    }
}

fn unknown_version(version: u32) -> String {
    format!(
        "it is in plan format {version}, and this speakap-sync reads formats 1 and {FORMAT_VERSION}: make the plan with this version (`speakap-sync plan --out`) and review it"
    )
}

fn probe_version(text: &str) -> Option<u32> {
    #[derive(Deserialize)]
    struct Version {
        format_version: Option<u32>,
    }
    serde_json::from_str::<Version>(text)
        .ok()
        .and_then(|v| v.format_version)
}

fn read_format_1(text: &str) -> Result<SavedPlan, String> {
    #[derive(Deserialize)]
    struct Format1 {
        checksum: String,
        #[serde(flatten)]
        plan: Plan,
    }
    let Format1 { checksum, mut plan } =
        serde_json::from_str(text).map_err(|e| format!("plan format 1: {e}"))?;
    let contents = format!(
        "sha256:{}",
        crate::digest::sha256_hex(serde_json::to_vec(&plan).expect("a plan serializes"))
    );
    plan.format_version = FORMAT_VERSION;
    let checksum = if contents == checksum {
        plan.checksum()
    } else {
        checksum
    };
    Ok(SavedPlan { checksum, plan })
}

#[derive(Serialize, Deserialize)]
struct Document<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<Cow<'a, str>>,
    format_version: u32,
    network: Cow<'a, str>,
    config_commit: Option<Cow<'a, str>>,
    hr: Cow<'a, SnapshotInfo>,
    network_fingerprint: Cow<'a, str>,
    #[serde(default)]
    network_read: NetworkRead,
    as_of: Date,
    /// Every provenance the changes cite, each once.
    sources: Vec<Source<'a>>,
    users: Vec<User<'a>>,
    scheduled: Cow<'a, [Scheduled]>,
    leaving: Cow<'a, [Leaving]>,
    deleted_outside: Cow<'a, [DeletedOutside]>,
    skipped: Cow<'a, [SkippedRecord]>,
    unmanaged: Cow<'a, [Unmanaged]>,
    warnings: Cow<'a, [String]>,
    safety: Cow<'a, SafetyVerdict>,
    summary: Cow<'a, Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    impact: Option<Cow<'a, Impact>>,
}

/// A provenance as the table holds it: an HR column without its line (that is the person's).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
enum Source<'a> {
    Hr {
        column: Cow<'a, str>,
    },
    Mapping {
        table: Cow<'a, str>,
        code: Cow<'a, str>,
        at: Cow<'a, Origin>,
    },
    Rule {
        list: RuleList,
        at: Cow<'a, Origin>,
    },
    Override {
        at: Cow<'a, Origin>,
    },
}

#[derive(Serialize, Deserialize)]
struct User<'a> {
    xid: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eid: Option<Cow<'a, str>>,
    name: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    action: UserAction,
    changes: Vec<Step<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invitation: Option<Cow<'a, Invitation>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Cow<'a, str>>,
}

/// Where a change's value comes from: an index into `sources`, and the HR line when it is not
/// the person's own.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Cite {
    source: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hr_line: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Step<'a> {
    SetXid {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Cow<'a, str>>,
        to: Cow<'a, str>,
    },
    SetProfile {
        field: ProfileField,
        #[serde(default, skip_serializing_if = "str::is_empty")]
        from: Cow<'a, str>,
        to: Cow<'a, str>,
        #[serde(flatten)]
        cite: Cite,
    },
    AddMembership {
        group: Cow<'a, str>,
        group_eid: Cow<'a, str>,
        kind: MembershipKind,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        admin: bool,
        #[serde(flatten)]
        cite: Cite,
    },
    RemoveMembership {
        group: Cow<'a, str>,
        group_eid: Cow<'a, str>,
        #[serde(flatten)]
        cite: Option<Cite>,
    },
    SetGroupAdmin {
        group: Cow<'a, str>,
        group_eid: Cow<'a, str>,
        admin: bool,
        #[serde(flatten)]
        cite: Option<Cite>,
    },
    SetNetworkRole {
        #[serde(default, skip_serializing_if = "str::is_empty")]
        from: Cow<'a, str>,
        to: NetworkRole,
        #[serde(flatten)]
        cite: Option<Cite>,
    },
    SetPrimaryBusinessUnit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Cow<'a, str>>,
        to: Cow<'a, str>,
        group_eid: Cow<'a, str>,
        #[serde(flatten)]
        cite: Cite,
    },
}

/// Builds the source table while the users are encoded, in order of first citation.
#[derive(Default)]
struct Sources<'a> {
    index: HashMap<Source<'a>, u32>,
    table: Vec<Source<'a>>,
}

impl<'a> Sources<'a> {
    fn cite(&mut self, provenance: &'a Provenance, person_line: Option<u64>) -> Cite {
        let (source, line) = match provenance {
            Provenance::Hr { column, line } => (
                Source::Hr {
                    column: Cow::Borrowed(column),
                },
                Some(*line),
            ),
            Provenance::Mapping(mapping) => (
                Source::Mapping {
                    table: Cow::Borrowed(&mapping.table),
                    code: Cow::Borrowed(&mapping.code),
                    at: Cow::Borrowed(&mapping.at),
                },
                None,
            ),
            Provenance::Rule { list, at } => (
                Source::Rule {
                    list: *list,
                    at: Cow::Borrowed(at),
                },
                None,
            ),
            Provenance::Override { at } => (
                Source::Override {
                    at: Cow::Borrowed(at),
                },
                None,
            ),
        };
        let next = self.table.len() as u32;
        let index = *self.index.entry(source).or_insert_with_key(|source| {
            self.table.push(source.clone());
            next
        });
        Cite {
            source: index,
            hr_line: line.filter(|line| Some(*line) != person_line),
        }
    }
}

impl<'a> Document<'a> {
    fn encode(plan: &'a Plan) -> Document<'a> {
        let mut sources = Sources {
            index: HashMap::with_capacity(64),
            table: Vec::new(),
        };
        let users = plan
            .users
            .iter()
            .map(|user| User::encode(user, &mut sources))
            .collect();
        Document {
            checksum: None,
            format_version: plan.format_version,
            network: Cow::Borrowed(&plan.network),
            config_commit: plan.config_commit.as_deref().map(Cow::Borrowed),
            hr: Cow::Borrowed(&plan.hr),
            network_fingerprint: Cow::Borrowed(&plan.network_fingerprint),
            network_read: plan.network_read,
            as_of: plan.as_of,
            sources: sources.table,
            users,
            scheduled: Cow::Borrowed(&plan.scheduled),
            leaving: Cow::Borrowed(&plan.leaving),
            deleted_outside: Cow::Borrowed(&plan.deleted_outside),
            skipped: Cow::Borrowed(&plan.skipped),
            unmanaged: Cow::Borrowed(&plan.unmanaged),
            warnings: Cow::Borrowed(&plan.warnings),
            safety: Cow::Borrowed(&plan.safety),
            summary: Cow::Borrowed(&plan.summary),
            impact: None,
        }
    }

    /// The checksum of the plan: the sha256 of this document as `encode` made it (no checksum,
    /// no impact), compact.
    fn checksum(&self) -> String {
        debug_assert!(self.checksum.is_none() && self.impact.is_none());
        let bytes = serde_json::to_vec(self).expect("a plan serializes");
        format!("sha256:{}", crate::digest::sha256_hex(bytes))
    }

    fn decode(self) -> Result<SavedPlan, String> {
        let sources: Vec<Provenance> = self.sources.into_iter().map(Source::decode).collect();
        let users = self
            .users
            .into_iter()
            .map(|user| user.decode(&sources))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SavedPlan {
            checksum: self.checksum.map(Cow::into_owned).unwrap_or_default(),
            plan: Plan {
                format_version: self.format_version,
                network: self.network.into_owned(),
                config_commit: self.config_commit.map(Cow::into_owned),
                hr: self.hr.into_owned(),
                network_fingerprint: self.network_fingerprint.into_owned(),
                network_read: self.network_read,
                as_of: self.as_of,
                users,
                scheduled: self.scheduled.into_owned(),
                leaving: self.leaving.into_owned(),
                deleted_outside: self.deleted_outside.into_owned(),
                skipped: self.skipped.into_owned(),
                unmanaged: self.unmanaged.into_owned(),
                warnings: self.warnings.into_owned(),
                safety: self.safety.into_owned(),
                summary: self.summary.into_owned(),
            },
        })
    }
}

impl Source<'_> {
    fn decode(self) -> Provenance {
        match self {
            // The line is the citing person's; filled in per change.
            Source::Hr { column } => Provenance::Hr {
                column: Arc::from(column.as_ref()),
                line: 0,
            },
            Source::Mapping { table, code, at } => Provenance::Mapping(Arc::new(MappingSource {
                table: table.into_owned(),
                code: code.into_owned(),
                at: at.into_owned(),
            })),
            Source::Rule { list, at } => Provenance::Rule {
                list,
                at: at.into_owned(),
            },
            Source::Override { at } => Provenance::Override {
                at: at.into_owned(),
            },
        }
    }
}

impl<'a> User<'a> {
    fn encode(user: &'a UserPlan, sources: &mut Sources<'a>) -> User<'a> {
        let line = user.line;
        let mut cite = |provenance: &'a Provenance| sources.cite(provenance, line);
        let changes = user
            .changes
            .iter()
            .map(|change| Step::encode(change, &mut cite))
            .collect();
        User {
            xid: Cow::Borrowed(&user.xid),
            eid: user.eid.as_deref().map(Cow::Borrowed),
            name: Cow::Borrowed(&user.name),
            line,
            action: user.action,
            changes,
            reason: user.reason.as_deref().map(Cow::Borrowed),
            invitation: user.invitation.as_ref().map(Cow::Borrowed),
            after: user.after.as_deref().map(Cow::Borrowed),
        }
    }

    fn decode(self, sources: &[Provenance]) -> Result<UserPlan, String> {
        let xid = self.xid.into_owned();
        let line = self.line;
        let provenance = |cite: Cite| -> Result<Provenance, String> {
            let source = sources.get(cite.source as usize).ok_or_else(|| {
                format!(
                    "a change of {xid} cites source {}, and there are {}",
                    cite.source,
                    sources.len()
                )
            })?;
            Ok(match source {
                Provenance::Hr { column, .. } => Provenance::Hr {
                    column: column.clone(),
                    line: cite.hr_line.or(line).ok_or_else(|| {
                        format!("a change of {xid} cites an HR column without a line")
                    })?,
                },
                other => other.clone(),
            })
        };
        let changes = self
            .changes
            .into_iter()
            .map(|step| step.decode(&provenance))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(UserPlan {
            xid,
            eid: self.eid.map(Cow::into_owned),
            name: self.name.into_owned(),
            line,
            action: self.action,
            changes,
            reason: self.reason.map(Cow::into_owned),
            invitation: self.invitation.map(Cow::into_owned),
            after: self.after.map(Cow::into_owned),
        })
    }
}

impl<'a> Step<'a> {
    fn encode(change: &'a Change, cite: &mut impl FnMut(&'a Provenance) -> Cite) -> Step<'a> {
        match change {
            Change::SetXid { from, to } => Step::SetXid {
                from: from.as_deref().map(Cow::Borrowed),
                to: Cow::Borrowed(to),
            },
            Change::SetProfile {
                field,
                from,
                to,
                source,
            } => Step::SetProfile {
                field: *field,
                from: Cow::Borrowed(from),
                to: Cow::Borrowed(to),
                cite: cite(source),
            },
            Change::AddMembership {
                group,
                group_eid,
                kind,
                admin,
                source,
            } => Step::AddMembership {
                group: Cow::Borrowed(group),
                group_eid: Cow::Borrowed(group_eid),
                kind: *kind,
                admin: *admin,
                cite: cite(source),
            },
            Change::RemoveMembership {
                group,
                group_eid,
                source,
            } => Step::RemoveMembership {
                group: Cow::Borrowed(group),
                group_eid: Cow::Borrowed(group_eid),
                cite: source.as_ref().map(&mut *cite),
            },
            Change::SetGroupAdmin {
                group,
                group_eid,
                admin,
                source,
            } => Step::SetGroupAdmin {
                group: Cow::Borrowed(group),
                group_eid: Cow::Borrowed(group_eid),
                admin: *admin,
                cite: source.as_ref().map(&mut *cite),
            },
            Change::SetNetworkRole { from, to, source } => Step::SetNetworkRole {
                from: Cow::Borrowed(from),
                to: *to,
                cite: source.as_ref().map(&mut *cite),
            },
            Change::SetPrimaryBusinessUnit {
                from,
                to,
                group_eid,
                source,
            } => Step::SetPrimaryBusinessUnit {
                from: from.as_deref().map(Cow::Borrowed),
                to: Cow::Borrowed(to),
                group_eid: Cow::Borrowed(group_eid),
                cite: cite(source),
            },
        }
    }

    fn decode(
        self,
        provenance: &impl Fn(Cite) -> Result<Provenance, String>,
    ) -> Result<Change, String> {
        let optional = |cite: Option<Cite>| cite.map(provenance).transpose();
        Ok(match self {
            Step::SetXid { from, to } => Change::SetXid {
                from: from.map(Cow::into_owned),
                to: to.into_owned(),
            },
            Step::SetProfile {
                field,
                from,
                to,
                cite,
            } => Change::SetProfile {
                field,
                from: from.into_owned(),
                to: to.into_owned(),
                source: provenance(cite)?,
            },
            Step::AddMembership {
                group,
                group_eid,
                kind,
                admin,
                cite,
            } => Change::AddMembership {
                group: group.into_owned(),
                group_eid: group_eid.into_owned(),
                kind,
                admin,
                source: provenance(cite)?,
            },
            Step::RemoveMembership {
                group,
                group_eid,
                cite,
            } => Change::RemoveMembership {
                group: group.into_owned(),
                group_eid: group_eid.into_owned(),
                source: optional(cite)?,
            },
            Step::SetGroupAdmin {
                group,
                group_eid,
                admin,
                cite,
            } => Change::SetGroupAdmin {
                group: group.into_owned(),
                group_eid: group_eid.into_owned(),
                admin,
                source: optional(cite)?,
            },
            Step::SetNetworkRole { from, to, cite } => Change::SetNetworkRole {
                from: from.into_owned(),
                to,
                source: optional(cite)?,
            },
            Step::SetPrimaryBusinessUnit {
                from,
                to,
                group_eid,
                cite,
            } => Change::SetPrimaryBusinessUnit {
                from: from.map(Cow::into_owned),
                to: to.into_owned(),
                group_eid: group_eid.into_owned(),
                source: provenance(cite)?,
            },
        })
    }
}

/// JSON indented down to `depth` levels of nesting and compact below: a list of people reads one
/// person per line, at a fraction of the size of indenting every value.
struct Outline {
    depth: usize,
    max: usize,
    has_value: bool,
}

impl Outline {
    fn new(max: usize) -> Outline {
        Outline {
            depth: 0,
            max,
            has_value: false,
        }
    }

    fn open<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        let laid_out = self.depth <= self.max;
        self.depth -= 1;
        if laid_out && self.has_value {
            self.newline(writer)?;
        }
        writer.write_all(bracket)
    }

    fn item<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        if self.depth <= self.max {
            self.newline(writer)?;
        }
        Ok(())
    }

    fn newline<W: ?Sized + std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b"\n")?;
        for _ in 0..self.depth {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Outline {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(writer, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(if self.depth <= self.max { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}
