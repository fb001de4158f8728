//! `init DIR --hr FILE [--network EID] [--embedded]`: a ready config repository from an HR
//! export. The export is read, the mapping proposed (`propose`), the network's groups matched
//! when `--network` is given, and the documents written with every unsure guess marked
//! `# TODO: confirm` and listed on stdout. Existing files are never overwritten; what is written
//! is loaded and validated before init reports success.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::export::{self, Export, Format};
use super::propose::{self, CodeMapping, Guess, Proposal};
use super::yaml::quoted;
use crate::cli::InitArgs;
use crate::config;
use crate::error::Error;
use crate::fields::FieldName;
use crate::speakap::seed::{self, Seed, SeedGroup};
use crate::speakap::{self, Client, wire};
use crate::text::{counted, inert};

const TODO: &str = "# TODO: confirm";
const SEED_FILE: &str = "simulator/seed.json";
const STATE_FILE: &str = ".speakap-sim/state.json";
const SCHEMA_COMMENT: &str = "# yaml-language-server: $schema=schema/speakap-sync.schema.json\n";
const PLAN_WORKFLOW: &str = include_str!("../../example-repo/.github/workflows/speakap-plan.yml");
const APPLY_WORKFLOW: &str = include_str!("../../example-repo/.github/workflows/speakap-apply.yml");

/// An unsure guess: where it is, and why to look at it.
struct Todo {
    place: String,
    why: String,
}

/// What init decided, before anything is written.
struct Plan {
    export: Export,
    proposal: Proposal,
    network: String,
    embedded: bool,
    business_units: Vec<CodeMapping>,
    departments: Vec<CodeMapping>,
    /// The live network's groups (with `--network`), for the seed.
    live_groups: Vec<wire::Group>,
    hr_file: String,
    url: String,
    token_env: String,
    todos: Vec<Todo>,
}

pub async fn init(args: &InitArgs) -> Result<i32, Error> {
    let export = export::read(&args.hr, &propose::is_known_header)?;
    let proposal = propose::propose(&export)
        .map_err(|why| Error::input(format!("{}: {why}", args.hr.display())))?;
    let live_groups = match &args.network {
        Some(network) => read_groups(args, network).await?,
        None => Vec::new(),
    };
    let plan = decide(args, export, proposal, live_groups);
    let files = documents(&plan);
    check_written_config(&files)?;
    write_all(&args.dir, &args.hr, &plan, &files)?;
    print!("{}", summary(args, &plan, &files));
    Ok(0)
}

/// The network's groups, read with the token from `--token-env` (nothing is changed).
async fn read_groups(args: &InitArgs, network: &str) -> Result<Vec<wire::Group>, Error> {
    if !wire::is_eid(network) {
        return Err(Error::input(format!(
            "--network {}: a network EID is 16 lowercase hexadecimal characters",
            inert(network)
        )));
    }
    let token = speakap::token_from_env(&args.token_env)?;
    let client = Client::new(
        &args.url,
        network,
        &token,
        config::DEFAULT_API_VERSION,
        config::DEFAULT_REQUESTS_PER_SECOND,
    )?;
    let groups = client.list_groups().await?.items;
    tracing::info!("read {} groups of network {network}", groups.len());
    Ok(groups)
}

fn decide(
    args: &InitArgs,
    export: Export,
    proposal: Proposal,
    live_groups: Vec<wire::Group>,
) -> Plan {
    let embedded = args.embedded || args.network.is_none();
    let network = args.network.clone().unwrap_or_else(|| {
        // A made-up EID for the simulated network, the same for the same export.
        crate::digest::sha256_hex(export.header.join("\u{1f}"))[..16].to_string()
    });
    let mut todos = Vec::new();
    let business_units = code_mappings(
        args,
        (&export, &proposal, &live_groups),
        FieldName::Locations,
        &mut todos,
    );
    let departments = code_mappings(
        args,
        (&export, &proposal, &live_groups),
        FieldName::Departments,
        &mut todos,
    );
    todos.extend(settings_todos(args, &proposal));
    let extension = args
        .hr
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .filter(|e| ["csv", "txt", "xlsx", "xlsm", "xlsb", "xls", "ods"].contains(&e.as_str()))
        .unwrap_or_else(|| "csv".into());
    Plan {
        export,
        proposal,
        network,
        embedded,
        business_units,
        departments,
        live_groups,
        hr_file: format!("hr/employees.{extension}"),
        url: args.url.clone(),
        token_env: args.token_env.clone(),
        todos,
    }
}

/// The code table for `field` (locations → business units, departments → departments): matched
/// to the live network's groups with `--network`, else named after the codes; every unsure
/// mapping and every code left unmapped is added to `todos`.
fn code_mappings(
    args: &InitArgs,
    (export, proposal, live_groups): (&Export, &Proposal, &[wire::Group]),
    field: FieldName,
    todos: &mut Vec<Todo>,
) -> Vec<CodeMapping> {
    let (table, group_type) = if field == FieldName::Locations {
        ("business_units", "business_unit")
    } else {
        ("departments", "department")
    };
    let Some(column) = proposal.column(&field) else {
        return Vec::new();
    };
    let codes = propose::codes(export, column, &proposal.multi_value_separator);
    let mappings = if args.network.is_some() {
        let names: Vec<String> = live_groups
            .iter()
            .filter(|g| g.group_type == group_type)
            .map(|g| g.name.clone())
            .collect();
        propose::match_groups(&codes, &names)
    } else {
        propose::name_groups(&codes, &field, proposal.language)
    };
    for m in &mappings {
        let why = match &m.group {
            Some(Guess {
                confirm: Some(why),
                value,
            }) => format!("{} → {}: {why}", quoted(&m.code.code), quoted(value)),
            Some(_) => continue,
            None => format!(
                "{}: no {group_type} group resembles it; its {} skipped until it is mapped",
                quoted(&m.code.code),
                counted(m.code.people, "person is", "people are")
            ),
        };
        todos.push(Todo {
            place: format!("mapping.yaml {table}"),
            why,
        });
    }
    mappings
}

/// The guesses in sync.yaml to confirm: unsure columns, the date format, the time zone and a
/// made-up network.
fn settings_todos(args: &InitArgs, proposal: &Proposal) -> Vec<Todo> {
    let mut todos = Vec::new();
    for column in &proposal.columns {
        if let Some(why) = &column.confirm {
            todos.push(Todo {
                place: format!("sync.yaml source.columns.{}", column.field.name()),
                why: why.clone(),
            });
        }
    }
    if let Some(why) = &proposal.date_format.confirm {
        todos.push(Todo {
            place: "sync.yaml source.date_format".into(),
            why: why.clone(),
        });
    }
    todos.push(Todo {
        place: "sync.yaml policy.timezone".into(),
        why: format!(
            "{} is a guess from the language of the headers",
            proposal.language.timezone()
        ),
    });
    if args.network.is_none() {
        todos.push(Todo {
            place: "sync.yaml network".into(),
            why:
                "made up for the simulator: set your network's EID before connecting a real network"
                    .into(),
        });
    }
    todos
}

/// Every file to write (relative path, contents), the HR copy aside.
fn documents(plan: &Plan) -> Vec<(String, String)> {
    let mut files = vec![
        ("sync.yaml".to_string(), sync_yaml(plan)),
        ("mapping.yaml".to_string(), mapping_yaml(plan)),
        ("exclusions.yaml".to_string(), EXCLUSIONS.to_string()),
        ("overrides.yaml".to_string(), OVERRIDES.to_string()),
        (".gitignore".to_string(), GITIGNORE.to_string()),
        (
            ".github/workflows/speakap-plan.yml".to_string(),
            PLAN_WORKFLOW.to_string(),
        ),
        (
            ".github/workflows/speakap-apply.yml".to_string(),
            APPLY_WORKFLOW.to_string(),
        ),
    ];
    if plan.embedded {
        files.push((SEED_FILE.to_string(), seed_json(plan)));
    }
    for (name, text) in config::schema::all_files() {
        files.push((format!("schema/{name}"), text));
    }
    files
}

const GITIGNORE: &str = "\
# The embedded simulator's kept network (speakap.embedded.state).
.speakap-sim/
# The HR export holds personal data: plan and apply read it from the work tree, so it needs no
# commit. Remove this line only if this repository may hold it.
hr/
";

const EXCLUSIONS: &str = "# yaml-language-server: $schema=schema/speakap-sync.schema.json
# People the sync leaves alone: never invited, changed or offboarded. For example:
#   - xid: \"12345\"
#     reason: The CEO manages their own account
#   - when: { field: job_title, matches: \"^Contractor\" }
#     reason: Contractors get guest access
apiVersion: speakap-sync/v1
kind: Exclusions
exclude: []
";

const OVERRIDES: &str = "# yaml-language-server: $schema=schema/speakap-sync.schema.json
# Manual exceptions for one person, each with a reason. For example:
#   - xid: \"20031\"
#     reason: Covers Utrecht while its manager is on leave (HR-2291)
#     until: 2027-01-31
#     add_groups: [Store Utrecht]
apiVersion: speakap-sync/v1
kind: Overrides
overrides: []
";

/// ` # TODO: confirm` after a line whose guess is unsure.
fn todo_mark(confirm: &Option<String>) -> &'static str {
    if confirm.is_some() {
        "   # TODO: confirm"
    } else {
        ""
    }
}

fn sync_yaml(plan: &Plan) -> String {
    let proposal = &plan.proposal;
    let mut out = String::from(SCHEMA_COMMENT);
    out.push_str(
        "# Written by `speakap-sync init`. Review every `# TODO: confirm`, then commit.\n",
    );
    out.push_str("apiVersion: speakap-sync/v1\nkind: SyncConfig\n");
    let _ = writeln!(
        out,
        "network: {}{}",
        quoted(&plan.network),
        if plan.embedded && plan.live_groups.is_empty() {
            "   # TODO: confirm: made up for the simulator"
        } else {
            ""
        }
    );
    out.push_str("speakap:\n");
    if plan.embedded {
        out.push_str("  # The bundled simulator, in-process: rehearse without credentials. For the real network:\n");
        out.push_str(
            "  # url: https://api.speakap.io, no `embedded`, and the token in SPEAKAP_TOKEN.\n",
        );
        out.push_str("  url: embedded\n  embedded:\n");
        let _ = writeln!(out, "    seed: {SEED_FILE}\n    state: {STATE_FILE}");
    } else {
        let _ = writeln!(out, "  url: {}", quoted(&plan.url));
    }
    let _ = writeln!(out, "  token_env: {}", quoted(&plan.token_env));
    out.push_str(&source_yaml(plan));
    out.push_str("policy:\n");
    let _ = writeln!(
        out,
        "  timezone: {}   {TODO}: the network's time zone",
        proposal.language.timezone()
    );
    let on_start = proposal.column(&FieldName::StartDate).is_some();
    let _ = writeln!(
        out,
        "  invite: {{ channel: email, on_start_date: {on_start} }}"
    );
    out.push_str("  offboarding: { grace_days: 30, then: delete }   # suspended 30 days, recoverable, then deleted\n");
    out.push_str("  manual_deletions: respect\n  xid_change: block\n  safety:\n");
    out.push_str("    max_offboard_percent: 10\n    max_change_percent: 25\n");
    let records = plan.export.rows.len();
    let _ = writeln!(
        out,
        "    min_records: {}   # half the {records} records of the export: a smaller one is refused as cut short",
        (records / 2).max(1)
    );
    out
}

fn source_yaml(plan: &Plan) -> String {
    let proposal = &plan.proposal;
    let mut out = String::from("source:\n");
    match &plan.export.format {
        Format::Csv { delimiter, .. } => {
            out.push_str("  type: csv\n");
            let _ = writeln!(out, "  path: {}", plan.hr_file);
            let _ = writeln!(
                out,
                "  delimiter: {}",
                quoted(&(*delimiter as char).to_string())
            );
            out.push_str("  encoding: windows-1252   # for lines that are not UTF-8\n");
        }
        Format::Excel { .. } => {
            out.push_str("  type: excel\n");
            let _ = writeln!(out, "  path: {}", plan.hr_file);
        }
    }
    let _ = writeln!(
        out,
        "  multi_value_separator: {}",
        quoted(&proposal.multi_value_separator)
    );
    let _ = writeln!(
        out,
        "  date_format: {}{}",
        quoted(&proposal.date_format.value),
        todo_mark(&proposal.date_format.confirm)
    );
    out.push_str("  columns:\n");
    for column in &proposal.columns {
        let name = if column.as_text {
            format!("{{ name: {}, type: text }}", quoted(&column.header))
        } else {
            quoted(&column.header)
        };
        let _ = writeln!(
            out,
            "    {}: {name}{}",
            column.field.name(),
            todo_mark(&column.confirm)
        );
    }
    let unused: Vec<String> = plan
        .export
        .header
        .iter()
        .enumerate()
        .filter(|(i, h)| !h.is_empty() && !proposal.columns.iter().any(|c| c.index == *i))
        .map(|(_, h)| quoted(h))
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(
            out,
            "    # Further columns, usable in matchers when named under `extra:`: {}",
            unused.join(", ")
        );
    }
    out
}

fn mapping_yaml(plan: &Plan) -> String {
    let mut out = String::from(SCHEMA_COMMENT);
    out.push_str("apiVersion: speakap-sync/v1\nkind: MappingRules\n");
    for (table, mappings, column) in [
        ("business_units", &plan.business_units, FieldName::Locations),
        ("departments", &plan.departments, FieldName::Departments),
    ] {
        let Some(column) = plan.proposal.column(&column) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{table}:   # the codes in column {}",
            quoted(&column.header)
        );
        out.push_str("  unknown: reject   # a person with a code not below is skipped and reported, never offboarded\n");
        let mapped: Vec<&CodeMapping> = mappings.iter().filter(|m| m.group.is_some()).collect();
        out.push_str(if mapped.is_empty() {
            "  map: {}\n"
        } else {
            "  map:\n"
        });
        for m in mappings {
            let people = counted(m.code.people, "person", "people");
            match &m.group {
                Some(group) => {
                    let _ = writeln!(
                        out,
                        "    {}: {}   {}{people}",
                        quoted(&m.code.code),
                        quoted(&group.value),
                        if group.confirm.is_some() {
                            "# TODO: confirm; "
                        } else {
                            "# "
                        }
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "    # {}: ?   # TODO: confirm: no group resembles this code; {people}",
                        quoted(&m.code.code)
                    );
                }
            }
        }
    }
    out.push_str(
        "# Groups for everyone a matcher selects, network roles and local admins, for example:\n",
    );
    out.push_str("#   groups: [ { group: Store managers, when: { field: job_title, equals: Store Manager } } ]\n");
    out.push_str(
        "#   roles: [ { role: admin, when: { field: job_title, equals: HR Director } } ]\n",
    );
    out.push_str("#   local_admins: [ { of: business_unit, when: { field: job_title, equals: Store Manager } } ]\n");
    out
}

/// The simulator's starting network: the groups the mapping names (with their live names and
/// types under `--network`), no accounts.
fn seed_json(plan: &Plan) -> String {
    let mut groups: Vec<SeedGroup> = Vec::new();
    for (mappings, group_type) in [
        (&plan.business_units, "business_unit"),
        (&plan.departments, "department"),
    ] {
        for group in mappings.iter().filter_map(|m| m.group.as_ref()) {
            if !groups.iter().any(|g| g.name == group.value) {
                groups.push(SeedGroup {
                    eid: None,
                    name: group.value.clone(),
                    group_type: group_type.to_string(),
                });
            }
        }
    }
    let seed = Seed {
        schema: Some(format!("../schema/{}", seed::SCHEMA_FILE)),
        groups,
        users: Vec::new(),
    };
    let mut text = serde_json::to_string_pretty(&seed).expect("a seed serializes");
    text.push('\n');
    text
}

/// The written documents must load: a proposal that does not validate is init's own error.
fn check_written_config(files: &[(String, String)]) -> Result<(), Error> {
    let yaml: Vec<&str> = files
        .iter()
        .filter(|(name, _)| name.ends_with(".yaml"))
        .map(|(_, text)| text.as_str())
        .collect();
    let joined = yaml.join("\n---\n");
    config::load(config::ConfigFiles::in_memory("init", joined)).map_err(|diagnostics| {
        Error::input(format!(
            "init proposed a config that does not validate (please report this): {}",
            diagnostics
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    Ok(())
}

/// Writes every file under `dir`, refusing before the first one if any is there already.
fn write_all(dir: &Path, hr: &Path, plan: &Plan, files: &[(String, String)]) -> Result<(), Error> {
    let targets: Vec<PathBuf> = files
        .iter()
        .map(|(name, _)| dir.join(name))
        .chain([dir.join(&plan.hr_file)])
        .collect();
    let existing: Vec<String> = targets
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Error::input(format!(
            "{} exist(s) already; init never overwrites: choose an empty directory",
            existing.join(", ")
        )));
    }
    let cannot = |path: &Path, e: std::io::Error| {
        Error::input(format!("cannot write {}: {e}", path.display()))
    };
    for ((_, text), path) in files.iter().zip(&targets) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| cannot(parent, e))?;
        }
        std::fs::write(path, text).map_err(|e| cannot(path, e))?;
    }
    let copy = dir.join(&plan.hr_file);
    if let Some(parent) = copy.parent() {
        std::fs::create_dir_all(parent).map_err(|e| cannot(parent, e))?;
    }
    std::fs::copy(hr, &copy).map_err(|e| cannot(&copy, e))?;
    Ok(())
}

/// What init read, proposed and wrote, the guesses to confirm and what to do next (stdout).
fn summary(args: &InitArgs, plan: &Plan, files: &[(String, String)]) -> String {
    let proposal = &plan.proposal;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Read {}: {}, {} records",
        inert(&args.hr.display().to_string()),
        propose::describe_format(&plan.export.format),
        plan.export.rows.len()
    );
    out.push_str("Columns:\n");
    for column in &proposal.columns {
        let _ = writeln!(
            out,
            "  {:<12} {}",
            column.field.name(),
            inert(&quoted(&column.header))
        );
    }
    for (title, mappings) in [
        ("Locations", &plan.business_units),
        ("Departments", &plan.departments),
    ] {
        if mappings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}: {} codes", mappings.len());
        for m in mappings.iter() {
            let group = m
                .group
                .as_ref()
                .map_or("(no group)".to_string(), |g| quoted(&g.value));
            let _ = writeln!(
                out,
                "  {:<16} {:>13}  → {}",
                inert(&quoted(&m.code.code)),
                counted(m.code.people, "person", "people"),
                inert(&group)
            );
        }
    }
    for note in &proposal.notes {
        let _ = writeln!(out, "Note: {}", inert(note));
    }
    let written: Vec<&str> = files
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|n| !n.starts_with("schema/"))
        .collect();
    let _ = writeln!(
        out,
        "Wrote {}: {}, {} (a copy of the export) and schema/",
        inert(&args.dir.display().to_string()),
        written.join(", "),
        plan.hr_file
    );
    if !plan.todos.is_empty() {
        let _ = writeln!(
            out,
            "To confirm ({} guesses, marked `{TODO}`):",
            plan.todos.len()
        );
        for todo in &plan.todos {
            let _ = writeln!(out, "  {}: {}", todo.place, inert(&todo.why));
        }
    }
    let dir = inert(&args.dir.display().to_string()).into_owned();
    let _ = writeln!(
        out,
        "Next:\n  cd {dir} && git init && git add -A && git commit -m \"speakap-sync config\""
    );
    out.push_str("  speakap-sync validate && speakap-sync plan\n");
    out
}
