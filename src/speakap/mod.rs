//! The Speakap side: the REST client, its wire types, and the observed network built from it.

mod client;
pub mod seed;
mod small_map;
pub mod wire;

pub use client::{
    ApiError, Client, DEFAULT_PAGE_SIZE, Listing, MAX_INVITES_PER_CALL, token_from_env,
};
pub use small_map::SmallMap;

use crate::fields::{Profile, ProfileField};

/// The live network as the API shows it: what `plan` compares the desired state with.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub users: Vec<ObservedUser>,
    pub groups: Vec<wire::Group>,
    /// How much was read: shown in the plan header, not part of the fingerprint.
    pub read: NetworkRead,
}

/// The records the network's listings returned and the pages they took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkRead {
    pub accounts: usize,
    pub account_pages: usize,
    pub groups: usize,
    pub group_pages: usize,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ObservedUser {
    pub eid: String,
    pub xid: Option<String>,
    /// Suspended: cannot log in, recoverable (INFERRED status `suspended`).
    pub suspended: bool,
    pub profile: Profile,
    /// The network membership: its EID removes the user; its role is the network role.
    pub network: Option<wire::Membership>,
    /// Group EID → membership.
    pub groups: SmallMap<String, wire::Membership>,
    /// EID of the primary business unit group.
    pub primary_business_unit: Option<String>,
    /// The account's other email addresses (not the primary one): an address here is taken, so
    /// no one else may be given it, and an account is never linked or invited by it.
    pub other_emails: Vec<String>,
}

impl ObservedUser {
    pub fn get(&self, field: ProfileField) -> &str {
        self.profile.get(field)
    }

    pub fn role(&self) -> &str {
        self.network.as_ref().map_or("member", |m| m.role.as_str())
    }

    pub fn display_name(&self) -> String {
        let parts: Vec<&str> = [
            ProfileField::FirstName,
            ProfileField::Infix,
            ProfileField::LastName,
        ]
        .into_iter()
        .map(|f| self.get(f))
        .filter(|v| !v.is_empty())
        .collect();
        if parts.is_empty() {
            self.get(ProfileField::Email).to_string()
        } else {
            parts.join(" ")
        }
    }
}

impl From<wire::User> for ObservedUser {
    fn from(user: wire::User) -> Self {
        let email = user
            .primary_email
            .as_deref()
            .or_else(|| user.email_addresses.first().map(String::as_str))
            .unwrap_or_default();
        // In `ProfileField::ALL` order.
        let profile = Profile::new([
            email,
            &user.name.first_name,
            &user.name.infix,
            &user.name.family_name,
            user.job_title.as_deref().unwrap_or_default(),
            user.telephone_numbers
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        ]);
        let mut network = None;
        let mut groups = Vec::new();
        for membership in user.embedded.memberships {
            match &membership.group {
                Some(group) => groups.push((group.clone(), membership)),
                None => network = Some(membership),
            }
        }
        let groups = groups.into_iter().collect();
        let other_emails = user
            .email_addresses
            .iter()
            .filter(|other| !other.eq_ignore_ascii_case(email))
            .cloned()
            .collect();
        ObservedUser {
            eid: user.eid,
            xid: user.xid.filter(|x| !x.is_empty()),
            suspended: user.status == "suspended",
            profile,
            network,
            groups,
            primary_business_unit: user.primary_business_unit,
            other_emails,
        }
    }
}

impl Observed {
    /// sha256 of the network as observed (users sorted, memberships and profile in order): a plan
    /// made against it is stale once this changes.
    pub fn fingerprint(&self) -> String {
        let mut users: Vec<&ObservedUser> = self.users.iter().collect();
        users.sort_by(|a, b| a.eid.cmp(&b.eid));
        let mut groups: Vec<&wire::Group> = self.groups.iter().collect();
        groups.sort_by(|a, b| a.eid.cmp(&b.eid));
        // Streamed into the hash: the JSON of a large network is hundreds of megabytes.
        let mut hasher = sha2::Sha256::default();
        serde_json::to_writer(&mut hasher, &(users, groups))
            .expect("the observed network serializes");
        format!(
            "sha256:{}",
            crate::digest::hex(&sha2::Digest::finalize(hasher))
        )
    }
}

/// Reads the whole network: users (with memberships) and groups.
pub async fn fetch(client: &Client) -> Result<Observed, ApiError> {
    let users = client.list_users_as(|user| (user.deleted, ObservedUser::from(user)));
    let (users, groups) = tokio::try_join!(users, client.list_groups())?;
    let read = NetworkRead {
        accounts: users.items.len(),
        account_pages: users.pages,
        groups: groups.items.len(),
        group_pages: groups.pages,
    };
    let mut users: Vec<ObservedUser> = users
        .items
        .into_iter()
        .filter_map(|(deleted, user)| (!deleted).then_some(user))
        .collect();
    users.sort_by(|a, b| a.eid.cmp(&b.eid));
    let mut groups = groups.items;
    groups.sort_by(|a, b| a.eid.cmp(&b.eid));
    Ok(Observed {
        users,
        groups,
        read,
    })
}
