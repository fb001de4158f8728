//! `dump --out FILE [--pseudonymize]`: the live network's groups, accounts and memberships as a
//! simulator seed, so that a plan can be rehearsed against a copy (`url: embedded`). Read-only:
//! two listings, nothing sent that changes anything. EIDs are kept, so the ledger and the plan
//! name the same accounts and groups in the copy. `--pseudonymize` replaces names, email
//! addresses and phone numbers by made-up ones, the same value by the same made-up one
//! throughout; XIDs, job titles, roles and memberships stay.

use std::collections::HashMap;
use std::io::Write;

use crate::cli::DumpArgs;
use crate::config;
use crate::error::Error;
use crate::speakap::seed::{Seed, SeedGroup, SeedUser};
use crate::speakap::{Client, token_from_env, wire};
use crate::text::counted;

pub async fn dump(args: &DumpArgs) -> Result<i32, Error> {
    let client = live_client(&args.config, args.worktree)?;
    tracing::warn!(
        "the dump holds personal data (names, email addresses, phone numbers{}): keep it out of git and share it as you would the HR export{}",
        if args.pseudonymize {
            ", replaced by made-up ones here; job titles and employee IDs stay"
        } else {
            ""
        },
        if args.pseudonymize {
            ""
        } else {
            "; --pseudonymize replaces them"
        }
    );
    let (users, groups) = tokio::try_join!(client.list_users(), client.list_groups())?;
    let mut seed = to_seed(users, groups.items);
    if args.pseudonymize {
        pseudonymize(&mut seed);
    }
    let memberships: usize = seed
        .users
        .iter()
        .map(|u| u.groups.len() + u.admin_of.len())
        .sum();
    write_private(&args.out, &seed)?;
    println!(
        "wrote {}: {} groups, {} accounts, {} group memberships{}",
        crate::text::inert(&args.out.display().to_string()),
        seed.groups.len(),
        seed.users.len(),
        memberships,
        if args.pseudonymize {
            " (pseudonymized)"
        } else {
            ""
        }
    );
    Ok(0)
}

/// A client for the network the SyncConfig names, with the token from its variable; the
/// embedded simulator is refused, its network being a seed already.
pub fn live_client(args: &crate::cli::ConfigArgs, worktree: bool) -> Result<Client, Error> {
    let files = config::read_config_files(&args.repo, args.rev(), worktree)?;
    let sync = config::load_sync_config(&files).ok_or_else(|| {
        Error::input(format!(
            "{}: no valid SyncConfig; `speakap-sync validate` says what to fix",
            args.repo.display()
        ))
    })?;
    let settings = &sync.speakap;
    if settings.url == "embedded" {
        return Err(Error::input(
            "this config uses the embedded simulator (`speakap.url: embedded`), whose network is its seed: set the real API's url to read the live network",
        ));
    }
    let token = token_from_env(&settings.token_env)?;
    Ok(sync.client(&settings.url, &token)?)
}

/// The network roles a seed can give; another (a custom role's EID) becomes `member`.
const SEED_ROLES: [&str; 3] = ["member", "admin", "invitee"];

/// The listed network as a seed: groups by name (by EID where two share a name), accounts in
/// EID order with their memberships, suspension and primary business unit.
fn to_seed(mut users: Vec<wire::User>, mut groups: Vec<wire::Group>) -> Seed {
    groups.sort_by(|a, b| a.eid.cmp(&b.eid));
    users.retain(|u| !u.deleted);
    users.sort_by(|a, b| a.eid.cmp(&b.eid));
    let mut name_count: HashMap<&str, usize> = HashMap::new();
    for group in &groups {
        *name_count.entry(group.name.as_str()).or_default() += 1;
    }
    let reference: HashMap<&str, String> = groups
        .iter()
        .map(|g| {
            let by = if name_count[g.name.as_str()] == 1 {
                &g.name
            } else {
                &g.eid
            };
            (g.eid.as_str(), by.clone())
        })
        .collect();
    let mut custom_roles = 0;
    let seed_users = users
        .iter()
        .map(|user| {
            let mut seeded = seed_user(user, &reference);
            if let Some(role) = &seeded.role
                && !SEED_ROLES.contains(&role.as_str())
            {
                custom_roles += 1;
                seeded.role = None;
            }
            seeded
        })
        .collect();
    if custom_roles > 0 {
        tracing::warn!(
            "{} a custom network role: the seed makes them members",
            counted(custom_roles, "account has", "accounts have")
        );
    }
    Seed {
        schema: None,
        groups: groups
            .into_iter()
            .map(|g| SeedGroup {
                eid: Some(g.eid),
                name: g.name,
                group_type: g.group_type,
            })
            .collect(),
        users: seed_users,
    }
}

fn seed_user(user: &wire::User, reference: &HashMap<&str, String>) -> SeedUser {
    let primary = user
        .primary_email
        .clone()
        .or_else(|| user.email_addresses.first().cloned())
        .unwrap_or_default();
    let (mut groups, mut admin_of, mut role) = (Vec::new(), Vec::new(), None);
    for membership in &user.embedded.memberships {
        match membership.group.as_deref().and_then(|g| reference.get(g)) {
            Some(group) if membership.role == "admin" => admin_of.push(group.clone()),
            Some(group) => groups.push(group.clone()),
            None if membership.group.is_none() => {
                role = (membership.role != "member").then(|| membership.role.clone())
            }
            None => {}
        }
    }
    SeedUser {
        eid: Some(user.eid.clone()),
        xid: user.xid.clone().filter(|x| !x.is_empty()),
        other_emails: user
            .email_addresses
            .iter()
            .filter(|e| !e.eq_ignore_ascii_case(&primary))
            .cloned()
            .collect(),
        email: primary,
        first_name: user.name.first_name.clone(),
        infix: user.name.infix.clone(),
        family_name: user.name.family_name.clone(),
        job_title: user.job_title.clone(),
        phone: user.telephone_numbers.first().cloned(),
        role,
        suspended: user.status == "suspended",
        groups,
        admin_of,
        primary_business_unit: user
            .primary_business_unit
            .as_deref()
            .and_then(|g| reference.get(g))
            .cloned(),
    }
}

/// Made-up values for one kind of personal data: the same original, the same made-up value.
struct Pseudonyms {
    made: HashMap<String, String>,
    make: fn(usize) -> String,
}

impl Pseudonyms {
    fn new(make: fn(usize) -> String) -> Pseudonyms {
        Pseudonyms {
            made: HashMap::new(),
            make,
        }
    }

    fn of(&mut self, original: &str) -> String {
        if original.is_empty() {
            return String::new();
        }
        let next = self.made.len() + 1;
        let make = self.make;
        self.made
            .entry(original.to_lowercase())
            .or_insert_with(|| make(next))
            .clone()
    }
}

/// Replaces names, addresses and phone numbers, numbered in the order the accounts are listed.
fn pseudonymize(seed: &mut Seed) {
    let mut first = Pseudonyms::new(|n| format!("First{n}"));
    let mut family = Pseudonyms::new(|n| format!("Family{n}"));
    let mut emails = Pseudonyms::new(|n| format!("person{n}@example.invalid"));
    let mut phones = Pseudonyms::new(|n| format!("+000 {n:08}"));
    for user in &mut seed.users {
        user.first_name = first.of(&user.first_name);
        user.family_name = family.of(&user.family_name);
        user.email = emails.of(&user.email);
        for other in &mut user.other_emails {
            *other = emails.of(other);
        }
        user.phone = user.phone.as_deref().map(|p| phones.of(p));
    }
}

/// Writes the seed to a new file only its owner may read.
fn write_private(path: &std::path::Path, seed: &Seed) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let cannot = |e: std::io::Error| {
        Error::input(format!(
            "cannot write {}: {e}{}",
            path.display(),
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                " (dump never overwrites: remove it or choose another name)"
            } else {
                ""
            }
        ))
    };
    let mut file = options.open(path).map_err(cannot)?;
    let mut text = serde_json::to_string_pretty(&seed).expect("a seed serializes");
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(cannot)?;
    Ok(())
}
