//! The simulator seed: a human-writable starting network (groups, accounts, memberships) that
//! the simulator loads, `init --embedded` writes and `dump` makes from a live network. Its JSON
//! schema is generated from these types (`schema/simulator-seed.schema.json`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The file name of the seed's JSON schema under `schema/`.
pub const SCHEMA_FILE: &str = "simulator-seed.schema.json";

/// A starting network for the Speakap simulator: its groups, then its accounts with their
/// memberships. Read only when the simulator has no state file yet.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The JSON schema of this file, for editors (ignored by the simulator).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The network's groups, created in this order.
    #[serde(default)]
    pub groups: Vec<SeedGroup>,
    /// The network's accounts.
    #[serde(default)]
    pub users: Vec<SeedUser>,
}

/// A group of the network.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedGroup {
    /// The group's EID (16 lowercase hexadecimal characters); made up when absent. `dump`
    /// keeps the live network's, so a plan against the copy names the same groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{16}$"))]
    pub eid: Option<String>,
    /// The group's name, as `MappingRules` names it.
    #[schemars(length(min = 1))]
    pub name: String,
    /// `business_unit`, `department`, `public`, `restricted`, `private` or `secret`.
    #[serde(rename = "type")]
    #[schemars(regex(pattern = r"^(business_unit|department|public|restricted|private|secret)$"))]
    pub group_type: String,
}

/// An account of the network.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedUser {
    /// The account's EID (16 lowercase hexadecimal characters); made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{16}$"))]
    pub eid: Option<String>,
    /// The employee ID the account carries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<String>,
    /// The primary email address.
    pub email: String,
    /// Addresses besides the primary one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_emails: Vec<String>,
    #[serde(default)]
    pub first_name: String,
    /// Dutch "tussenvoegsel" (van, de, van der).
    #[serde(default)]
    pub infix: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The network role: `member` (default), `admin` or `invitee`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(member|admin|invitee)$"))]
    pub role: Option<String>,
    /// Suspended (cannot log in, recoverable for 30 days counted from when the simulator
    /// loads the seed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// Groups the account is a member of, by name (or by EID, for a name two groups share).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Groups where the account is a local admin, by name (or EID).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_of: Vec<String>,
    /// The primary business unit, by name (or EID); the first business unit among `groups`
    /// and `adminOf` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_business_unit: Option<String>,
}

impl Seed {
    /// The seed's digest as the simulator records it in its state: of its content, not its
    /// layout, so reformatting the file is no change.
    pub fn digest(&self) -> String {
        /// The seed without `$schema`, serialized as the seed is (a seed of a whole network
        /// is not copied for it).
        #[derive(Serialize)]
        struct Content<'a> {
            groups: &'a [SeedGroup],
            users: &'a [SeedUser],
        }
        let content = Content {
            groups: &self.groups,
            users: &self.users,
        };
        crate::digest::sha256_hex(serde_json::to_string(&content).expect("a seed serializes"))
    }
}
