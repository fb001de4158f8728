//! What the code hosts' REST APIs (GitHub, GitLab) share: a JSON client whose token goes only in
//! a sensitive header and is redacted from anything the host quotes back, errors that say what to
//! fix, the variables CI sets, paged listings with a bound, and the one note a token keeps up to
//! date (found by its marker and its author). The hosts' own paths live in `github` and `gitlab`.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::redact::redact_credentials;

/// Listings are read in pages of this size, at most this many pages.
const PAGE_SIZE: usize = 100;
const MAX_PAGES: usize = 50;

/// An authenticated client of one host's API.
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// Only to redact it from what the host (or a proxy) quotes back.
    token: String,
    host: &'static str,
    /// What to check for an HTTP status, e.g. the permission a 403 asks for.
    hint: fn(StatusCode) -> &'static str,
}

/// A variable CI sets; `purpose` says what needs it.
pub fn env(name: &str, purpose: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::input(format!("{name} is not set; {purpose}")))
}

impl Api {
    /// `auth` is the header carrying the token (its value marked sensitive).
    pub fn new(
        host: &'static str,
        base: &str,
        auth: (HeaderName, String),
        token: String,
        extra: &[(&'static str, &'static str)],
        hint: fn(StatusCode) -> &'static str,
    ) -> Result<Api, Error> {
        let mut headers = HeaderMap::new();
        let (name, value) = auth;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            Error::input(format!(
                "the {host} token contains characters not allowed in an HTTP header"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
        for (name, value) in extra {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("speakap-sync/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::input(format!("{host} client: {e}")))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            host,
            hint,
        })
    }

    /// A request to `path` under the API's base URL.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends; an answer of any status is returned, only a failure to get one is an error.
    pub async fn send(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<(StatusCode, String), Error> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::input(format!("{} API ({what}): {e}", self.host)))?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// Sends, and reads a successful answer as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<T, Error> {
        let (status, text) = self.send(request, what).await?;
        if !status.is_success() {
            return Err(self.failure(status, &text, what));
        }
        self.parse(&text, what)
    }

    pub fn parse<T: DeserializeOwned>(&self, text: &str, what: &str) -> Result<T, Error> {
        serde_json::from_str(text)
            .map_err(|e| Error::input(format!("{} API ({what}): {e}", self.host)))
    }

    pub fn failure(&self, status: StatusCode, text: &str, what: &str) -> Error {
        // Redacted before it is cut: a proxy may echo the request's token header.
        let message: String = redact_credentials(text, &[&self.token])
            .chars()
            .take(200)
            .collect();
        Error::input(format!(
            "{} API ({what}): HTTP {status}: {}{}",
            self.host,
            crate::text::inert(&message),
            (self.hint)(status)
        ))
    }

    /// The first item of a paged listing that `wanted` picks, reading at most `MAX_PAGES` pages.
    pub async fn find<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
        wanted: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, Error> {
        for page in 1..=MAX_PAGES {
            let request = self
                .request(Method::GET, path)
                .query(query)
                .query(&[("per_page", PAGE_SIZE), ("page", page)]);
            let items: Vec<T> = self.call(request, what).await?;
            let count = items.len();
            if let Some(found) = items.into_iter().find(&wanted) {
                return Ok(Some(found));
            }
            if count < PAGE_SIZE {
                break;
            }
        }
        Ok(None)
    }
}

/// A note, comment or issue as listed, created or updated.
pub trait Post: DeserializeOwned {
    fn id(&self) -> u64;
    fn body(&self) -> &str;
    /// Where a person reads it.
    fn link(&self) -> String;
}

#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    Created(String),
    Updated(String),
}

/// Where a sticky post lives: listed (with `query`) and created at `list`, updated at
/// `{items}/{id}` with `update_method`; the body goes in the field `body_field`.
pub struct Thread<'a> {
    pub list: String,
    pub query: Vec<(&'a str, &'a str)>,
    pub items: String,
    pub update_method: Method,
    pub body_field: &'static str,
    /// Further fields of a new post (a title, labels).
    pub create_fields: serde_json::Value,
}

/// An alert issue: its `thread`; comments go to `{items}/{id}/{comments}` as `{"body": …}`, and
/// `closed` is the update that closes it.
pub struct Tracker<'a> {
    pub thread: Thread<'a>,
    pub comments: &'static str,
    pub closed: serde_json::Value,
}

impl Api {
    /// The post in `thread` carrying `marker` that `ours` says this token wrote: anyone may write
    /// the marker, and someone else's post is never taken for ours.
    async fn ours<T: Post>(
        &self,
        thread: &Thread<'_>,
        marker: &str,
        ours: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, Error> {
        self.find(&thread.list, &thread.query, "list", |post: &T| {
            post.body().contains(marker) && ours(post)
        })
        .await
    }

    /// Updates our post carrying `marker`, or creates one.
    pub async fn upsert<T: Post>(
        &self,
        thread: &Thread<'_>,
        marker: &str,
        body: &str,
        ours: impl Fn(&T) -> bool,
    ) -> Result<Posted, Error> {
        match self.ours(thread, marker, ours).await? {
            Some(post) => {
                let payload = serde_json::json!({ thread.body_field: body });
                let path = format!("{}/{}", thread.items, post.id());
                let request = self
                    .request(thread.update_method.clone(), &path)
                    .json(&payload);
                let (status, text) = self.send(request, "update").await?;
                if !status.is_success() {
                    return Err(self.failure(status, &text, "update"));
                }
                let updated = self.parse::<T>(&text, "update").unwrap_or(post);
                Ok(Posted::Updated(updated.link()))
            }
            None => {
                let mut payload = thread.create_fields.clone();
                payload[thread.body_field] = body.into();
                let created: T = self
                    .call(
                        self.request(Method::POST, &thread.list).json(&payload),
                        "create",
                    )
                    .await?;
                Ok(Posted::Created(created.link()))
            }
        }
    }

    /// Comments on our open issue carrying `marker` and closes it; its link, if there was one.
    pub async fn close<T: Post>(
        &self,
        tracker: &Tracker<'_>,
        marker: &str,
        comment: &str,
        ours: impl Fn(&T) -> bool,
    ) -> Result<Option<String>, Error> {
        let Some(issue) = self.ours(&tracker.thread, marker, ours).await? else {
            return Ok(None);
        };
        let path = format!("{}/{}", tracker.thread.items, issue.id());
        let comments = format!("{path}/{}", tracker.comments);
        self.call::<serde_json::Value>(
            self.request(Method::POST, &comments)
                .json(&serde_json::json!({ "body": comment })),
            "comment on the issue",
        )
        .await?;
        self.call::<serde_json::Value>(
            self.request(tracker.thread.update_method.clone(), &path)
                .json(&tracker.closed),
            "close the issue",
        )
        .await?;
        Ok(Some(issue.link()))
    }
}
