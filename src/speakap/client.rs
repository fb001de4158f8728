//! HTTP client for the Speakap REST API: auth, versioned Accept header, paging, typed errors.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use super::wire::{
    self, Group, InviteRequest, InviteResponse, InviteResult, Invitee, Membership, User, UserUpdate,
};

/// Users and groups are listed in pages of this size.
const PAGE_SIZE: usize = 100;
/// The API accepts at most this many invitees per call.
pub const MAX_INVITES_PER_CALL: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Speakap API {method} {path}: {meaning} (code {code}, HTTP {status}): {message}{hint}", meaning = wire::code_meaning(*.code), hint = hint(*.code))]
    Api {
        method: String,
        path: String,
        status: u16,
        code: i64,
        message: String,
    },
    #[error("cannot reach the Speakap API at {url}: {detail}; check `speakap.url` and the network")]
    Unreachable { url: String, detail: String },
    #[error("unexpected response from Speakap API {method} {path}: {detail}")]
    Protocol {
        method: String,
        path: String,
        detail: String,
    },
    #[error("no Speakap API token: set the environment variable {0} to `{{appEID}}_{{appSecret}}`")]
    MissingToken(String),
}

fn hint(code: i64) -> &'static str {
    match code {
        -2 => "; check the token in the environment variable named by `speakap.token_env`",
        -3 => "; the application lacks the scope for this call: ask Speakap to grant it",
        _ => "",
    }
}

impl ApiError {
    pub fn code(&self) -> Option<i64> {
        match self {
            ApiError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Errors that will fail every further call too: stop the run instead of trying the rest.
    pub fn is_systemic(&self) -> bool {
        match self {
            ApiError::Api { code, status, .. } => matches!(code, -2 | -3) || *status == 401,
            ApiError::Unreachable { .. } | ApiError::MissingToken(_) => true,
            ApiError::Protocol { .. } => false,
        }
    }
}

/// A client for one network. The token is held only inside the Authorization header, which is
/// marked sensitive so it is never printed.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    network: String,
    /// Shared by clones, so concurrent tasks together stay under `requests_per_second`.
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        base_url: &str,
        network: &str,
        token: &str,
        api_version: &str,
        requests_per_second: u32,
    ) -> Result<Client, ApiError> {
        let mut headers = HeaderMap::new();
        let accept = HeaderValue::from_str(&wire::accept_header(api_version)).map_err(|e| {
            ApiError::Protocol {
                method: "-".into(),
                path: "-".into(),
                detail: format!("api_version gives an invalid Accept header: {e}"),
            }
        })?;
        headers.insert(ACCEPT, accept);
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ApiError::Protocol {
                method: "-".into(),
                path: "-".into(),
                detail: "the token contains characters not allowed in an HTTP header".into(),
            })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("speakap-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Protocol {
                method: "-".into(),
                path: "-".into(),
                detail: e.to_string(),
            })?;
        let rate = NonZeroU32::new(requests_per_second).unwrap_or(NonZeroU32::MIN);
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            network: network.to_string(),
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(rate))),
        })
    }

    fn path(&self, rest: &str) -> String {
        format!("/networks/{}/{rest}", self.network)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ApiError> {
        let text = self.send_raw(method.clone(), path, build).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Protocol {
            method: method.to_string(),
            path: path.to_string(),
            detail: format!("cannot decode the body: {e}"),
        })
    }

    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<String, ApiError> {
        let url = format!("{}{path}", self.base);
        self.limiter.until_ready().await;
        let request = build(self.http.request(method.clone(), &url));
        let response = request.send().await.map_err(|e| ApiError::Unreachable {
            url: self.base.clone(),
            detail: root_cause(&e),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ApiError::Unreachable {
            url: self.base.clone(),
            detail: root_cause(&e),
        })?;
        if status.is_success() {
            return Ok(text);
        }
        match serde_json::from_str::<wire::ErrorBody>(&text) {
            Ok(body) => Err(ApiError::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            }),
            Err(_) => Err(ApiError::Protocol {
                method: method.to_string(),
                path: path.to_string(),
                detail: format!("HTTP {status} without an error body: {}", excerpt(&text)),
            }),
        }
    }

    /// Every user of the network with their memberships.
    pub async fn list_users(&self) -> Result<Vec<User>, ApiError> {
        let path = self.path("users/");
        let mut users = Vec::new();
        self.paged(
            &path,
            &[("embed", "memberships")],
            |page: wire::UsersPage| {
                let count = page.embedded.users.len();
                users.extend(page.embedded.users);
                (page.total, count)
            },
        )
        .await?;
        Ok(users)
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>, ApiError> {
        let path = self.path("groups/");
        let mut groups = Vec::new();
        self.paged(&path, &[], |page: wire::GroupsPage| {
            let count = page.embedded.groups.len();
            groups.extend(page.embedded.groups);
            (page.total, count)
        })
        .await?;
        Ok(groups)
    }

    /// Walks `offset`/`limit` pages until `total` is reached. Bounded: at most the page count the
    /// first response announces, plus one, so a server that keeps growing cannot loop us forever.
    async fn paged<P: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut take: impl FnMut(P) -> (usize, usize),
    ) -> Result<(), ApiError> {
        let mut offset = 0usize;
        let mut max_pages = usize::MAX;
        let mut pages = 0usize;
        loop {
            let limit = PAGE_SIZE.to_string();
            let offset_text = offset.to_string();
            let page: P = self
                .send(Method::GET, path, |r| {
                    r.query(query)
                        .query(&[("offset", offset_text.as_str()), ("limit", limit.as_str())])
                })
                .await?;
            let (total, count) = take(page);
            pages += 1;
            if max_pages == usize::MAX {
                max_pages = total.div_ceil(PAGE_SIZE) + 1;
            }
            offset += count;
            if count == 0 || offset >= total || pages >= max_pages {
                return Ok(());
            }
        }
    }

    /// One user with their memberships.
    pub async fn get_user(&self, user: &str) -> Result<User, ApiError> {
        let path = self.path(&format!("users/{user}/"));
        self.send(Method::GET, &path, |r| r.query(&[("embed", "memberships")]))
            .await
    }

    /// Invites up to [`MAX_INVITES_PER_CALL`] people; the result has one entry per invitee.
    pub async fn invite(&self, invitees: Vec<Invitee>) -> Result<Vec<InviteResult>, ApiError> {
        let path = self.path("invite");
        let response: InviteResponse = self
            .send(Method::POST, &path, |r| r.json(&InviteRequest { invitees }))
            .await?;
        Ok(response.invitees)
    }

    /// INFERRED endpoint: creates an SSO account (no invitation mail); returns it.
    pub async fn create_sso_user(&self, user: &wire::NewSsoUser) -> Result<User, ApiError> {
        let path = self.path("users/");
        self.send(Method::POST, &path, |r| r.json(user)).await
    }

    /// INFERRED endpoint: profile update, including the XID.
    pub async fn update_user(&self, user: &str, update: &UserUpdate) -> Result<(), ApiError> {
        let path = self.path(&format!("users/{user}/"));
        self.send_raw(Method::PUT, &path, |r| r.json(update))
            .await
            .map(drop)
    }

    /// Adds the user to groups as member; returns the memberships created.
    pub async fn add_to_groups(
        &self,
        user: &str,
        groups: &[String],
    ) -> Result<Vec<Membership>, ApiError> {
        let path = self.path(&format!("users/{user}/groups/add"));
        let form: Vec<(&str, &str)> = groups.iter().map(|g| ("groups[]", g.as_str())).collect();
        let response: wire::MembershipsResponse =
            self.send(Method::POST, &path, |r| r.form(&form)).await?;
        Ok(response.memberships)
    }

    pub async fn remove_from_groups(&self, user: &str, groups: &[String]) -> Result<(), ApiError> {
        let path = self.path(&format!("users/{user}/groups/remove"));
        let form: Vec<(&str, &str)> = groups.iter().map(|g| ("groups[]", g.as_str())).collect();
        self.send_raw(Method::POST, &path, |r| r.form(&form))
            .await
            .map(drop)
    }

    /// Sets membership roles: `(membership EID, role)` pairs, for groups and for the network.
    pub async fn change_roles(&self, changes: &[(String, String)]) -> Result<(), ApiError> {
        let path = self.path("changeroles");
        let form: Vec<(String, &str)> = changes
            .iter()
            .map(|(m, role)| (format!("memberships[{m}]"), role.as_str()))
            .collect();
        self.send_raw(Method::POST, &path, |r| r.form(&form))
            .await
            .map(drop)
    }

    /// INFERRED endpoint: suspends a user (cannot log in; recoverable for 30 days).
    pub async fn suspend(&self, user: &str) -> Result<(), ApiError> {
        self.user_action(user, "suspend").await
    }

    /// INFERRED endpoint: reactivates a suspended user.
    pub async fn restore(&self, user: &str) -> Result<(), ApiError> {
        self.user_action(user, "restore").await
    }

    /// INFERRED endpoint: removes the user's personal data and the user.
    pub async fn anonymize(&self, user: &str) -> Result<(), ApiError> {
        self.user_action(user, "anonymize").await
    }

    async fn user_action(&self, user: &str, action: &str) -> Result<(), ApiError> {
        let path = self.path(&format!("users/{user}/{action}"));
        self.send_raw(Method::POST, &path, |r| r).await.map(drop)
    }

    /// Removes a user from the network through their network membership (202 Accepted).
    pub async fn remove_from_network(&self, network_membership: &str) -> Result<(), ApiError> {
        let path = self.path(&format!("memberships/{network_membership}/"));
        self.send_raw(Method::DELETE, &path, |r| {
            r.query(&[("resolution", "remove_from_network")])
        })
        .await
        .map(drop)
    }
}

fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    if error.is_timeout() {
        return "timed out".into();
    }
    source.to_string()
}

fn excerpt(text: &str) -> String {
    let trimmed: String = text.chars().take(120).collect();
    if trimmed.is_empty() {
        "(empty)".into()
    } else {
        trimmed
    }
}
