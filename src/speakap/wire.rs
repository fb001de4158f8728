//! Speakap REST API bodies, shared by the client and the simulator so the two cannot drift apart.
//!
//! Field names follow the public API documentation (`EID`, `XID`, `name.firstName`, `jobTitle`,
//! `telephoneNumbers`, `emailAddresses`, `primaryEmail`, HAL `_embedded`/`_links`). Shapes the
//! documentation does not show are marked INFERRED.

use serde::{Deserialize, Serialize};

/// Whether `text` has the shape of an EID (of a network, group or account): 16 lowercase
/// hexadecimal characters.
pub fn is_eid(text: &str) -> bool {
    text.len() == 16 && (text.bytes()).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    #[serde(rename = "firstName", default)]
    pub first_name: String,
    #[serde(default)]
    pub infix: String,
    #[serde(rename = "familyName", default)]
    pub family_name: String,
}

impl Name {
    pub fn full(&self) -> String {
        [&self.first_name, &self.infix, &self.family_name]
            .into_iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A membership of a user: in a group, or (when `group` is absent) in the network itself, where
/// `role` is the network role. INFERRED: the `group` field; the docs show memberships as `{EID, role}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    #[serde(rename = "EID")]
    pub eid: String,
    /// `invitee`, `member`, `admin`, or a role EID.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserEmbedded {
    #[serde(default)]
    pub memberships: Vec<Membership>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "EID")]
    pub eid: String,
    #[serde(rename = "XID", default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<String>,
    #[serde(default)]
    pub name: Name,
    #[serde(rename = "jobTitle", default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(rename = "telephoneNumbers", default)]
    pub telephone_numbers: Vec<String>,
    #[serde(rename = "emailAddresses", default)]
    pub email_addresses: Vec<String>,
    #[serde(
        rename = "primaryEmail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_email: Option<String>,
    /// INFERRED: the EID of the user's primary business unit group.
    #[serde(
        rename = "primaryBusinessUnit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_business_unit: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    /// INFERRED: `active` or `suspended` (a leaver within the recovery window).
    #[serde(default = "active")]
    pub status: String,
    /// Present when the listing was asked for `embed=memberships`.
    #[serde(rename = "_embedded", default)]
    pub embedded: UserEmbedded,
}

fn active() -> String {
    "active".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    #[serde(rename = "EID")]
    pub eid: String,
    pub name: String,
    /// `business_unit`, `department`, `public`, `restricted`, `private` or `secret`.
    #[serde(rename = "type")]
    pub group_type: String,
}

/// A page of the users collection (HAL): `{"total", "offset", "limit", "_embedded": {"users": [...]}}`.
/// The simulator also serves pages of users it holds as JSON already (`U = Arc<RawValue>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UsersPage<U = User> {
    /// INFERRED: the size of the whole collection, as HAL collections commonly report it; the
    /// documentation shows none. Absent, the client pages on until an empty page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    pub offset: usize,
    pub limit: usize,
    #[serde(rename = "_embedded")]
    pub embedded: EmbeddedUsers<U>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmbeddedUsers<U = User> {
    pub users: Vec<U>,
}

/// A listing page's items with the total it reports (INFERRED, see [`UsersPage::total`]).
pub type Page<T> = (Option<usize>, Vec<T>);

/// A page of the groups collection (HAL).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupsPage {
    /// INFERRED, as in [`UsersPage::total`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    pub offset: usize,
    pub limit: usize,
    #[serde(rename = "_embedded")]
    pub embedded: EmbeddedGroups,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmbeddedGroups {
    pub groups: Vec<Group>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Invitee {
    pub name: String,
    pub email: String,
    /// INFERRED: `sms` or `printable`; absent for an invitation by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// INFERRED: where an SMS invitation goes.
    #[serde(
        rename = "telephoneNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub telephone_number: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRequest {
    pub invitees: Vec<Invitee>,
}

/// Per-invitee outcome: `sent`, `resend`, `invitee`, `member` or `invalid`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteResult {
    pub email: String,
    pub status: String,
    #[serde(rename = "EID", default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// INFERRED: for printable invitations, the code the person activates the account with.
    #[serde(
        rename = "activationCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub activation_code: Option<String>,
}

/// INFERRED: `POST /networks/{n}/users/` creates an active single-sign-on account, no mail sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewSsoUser {
    #[serde(rename = "XID")]
    pub xid: String,
    pub upn: String,
    pub name: Name,
    #[serde(rename = "primaryEmail")]
    pub primary_email: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteResponse {
    pub invitees: Vec<InviteResult>,
}

/// INFERRED: `PUT /networks/{n}/users/{u}/` with only the fields to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    #[serde(rename = "XID", default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(rename = "jobTitle", default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(
        rename = "telephoneNumbers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub telephone_numbers: Option<Vec<String>>,
    #[serde(
        rename = "primaryEmail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_email: Option<String>,
    /// INFERRED: the EID of the user's primary business unit group.
    #[serde(
        rename = "primaryBusinessUnit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_business_unit: Option<String>,
}

/// INFERRED: the body answering `POST /networks/{n}/users/{u}/groups/add`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MembershipsResponse {
    pub memberships: Vec<Membership>,
}

/// `{"code": -N, "message": "…"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: i64,
    pub message: String,
}

/// What an API error code means, per the API documentation.
pub fn code_meaning(code: i64) -> &'static str {
    match code {
        -1 => "invalid request",
        -2 => "invalid token",
        -3 => "insufficient scope",
        -4 => "not found",
        -5 => "server error",
        -8 => "invalid email address",
        -9 => "already a member",
        -10 => "gone",
        -15 => "primary email address already in use",
        _ => "unknown error code",
    }
}

pub fn accept_header(api_version: &str) -> String {
    format!("application/vnd.speakap.api-v{api_version}+json+hal")
}
