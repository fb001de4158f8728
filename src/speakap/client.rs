//! HTTP client for the Speakap REST API: auth, versioned Accept header, rate limit, paging (pages
//! fetched concurrently once the total is known), typed errors, and retries.
//!
//! Reads are complete or fail: a listing must hold as many items as the total it reports, every
//! page as many as its place in the total calls for; a listing that reports no total is read on
//! until an empty page. A missing account would be planned as someone to invite again, a missing
//! group as one that does not exist.
//!
//! Retries: 429, 502, 503, 504 and connection failures are transient. Idempotent requests (reads,
//! profile updates, role changes) are retried with exponential backoff and jitter, waiting at
//! least as long as a `Retry-After` header asks. A non-idempotent request (an invite, a group
//! addition, a suspension, …) is never simply sent again: the client first checks whether the
//! failed attempt took effect — an invite is looked up by email — and only repeats what did not.
//! The exception is 429: a rate limiter turns a request away before it is handled, so any request
//! answered 429 is simply sent again once `Retry-After` has passed (checking a batch of invites
//! would cost a lookup per address, at the very moment the API asks for fewer requests).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use super::wire::{
    self, Group, InviteRequest, InviteResponse, InviteResult, Invitee, Membership, Page, User,
    UserUpdate,
};
use crate::redact::redact_credentials;

/// Users and groups are asked for in pages of this size unless configured (`speakap.page_size`).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The API accepts at most this many invitees per call.
pub const MAX_INVITES_PER_CALL: usize = 1000;
/// Attempts per request, the first included.
const MAX_ATTEMPTS: usize = 6;
/// Attempts per request answered 429 time after time: a rate limit paces the client rather than
/// failing it, so it is waited out longer than errors are (against an API limiting at a quarter
/// of our rate, one request in 20,000 met six 429s in a row and failed).
const MAX_THROTTLED_ATTEMPTS: usize = 20;
/// A `Retry-After` longer than this is not waited for: the run stops and says so.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Reads of a listing before its inconsistency is reported: a listing read while someone changes
/// the network can come out inconsistent once, hardly three times in a row.
const LISTING_READS: usize = 3;
/// A listing without a total is read up to this many items: an API that never serves an empty
/// page is stopped here rather than read forever.
const MAX_LISTED: usize = 10_000_000;

#[derive(Clone, Debug, thiserror::Error)]
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
    Unreachable {
        url: String,
        detail: String,
        /// The connection broke after the request may have gone out (not a refused connect).
        maybe_sent: bool,
    },
    #[error("Speakap API {method} {path}: HTTP {status} (still failing after {attempts} attempts)")]
    Unavailable {
        method: String,
        path: String,
        status: u16,
        attempts: usize,
    },
    #[error("unexpected response from Speakap API {method} {path}: {detail}")]
    Protocol {
        method: String,
        path: String,
        detail: String,
    },
    #[error("no Speakap API token: set the environment variable {0} to `{{appEID}}_{{appSecret}}`")]
    MissingToken(String),
    #[error(
        "Speakap API GET {path}: the listing of {noun} is incomplete, read {reads} times ({detail}); nothing is planned from part of the network (a missing account would look like someone to invite, a missing group like one that does not exist). Run again later; if it persists, report it to Speakap with this message"
    )]
    IncompleteListing {
        path: String,
        /// What is listed: `accounts` or `groups`.
        noun: &'static str,
        detail: String,
        reads: usize,
    },
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

    /// Whether the request may have been carried out although it reports failure: the server
    /// broke off, failed after receiving it, or answered in a way that cannot be read. Such an
    /// outcome is unknown until the network is looked at again.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            ApiError::Api { status, .. } => *status >= 500,
            ApiError::Unreachable { maybe_sent, .. } => *maybe_sent,
            ApiError::Unavailable { status, .. } => *status != 429,
            ApiError::Protocol { .. } => true,
            ApiError::MissingToken(_) | ApiError::IncompleteListing { .. } => false,
        }
    }

    /// Errors that will fail every further call too: stop the run instead of trying the rest.
    pub fn is_systemic(&self) -> bool {
        match self {
            ApiError::Api { code, status, .. } => matches!(code, -2 | -3) || *status == 401,
            ApiError::Unreachable { .. }
            | ApiError::Unavailable { .. }
            | ApiError::MissingToken(_) => true,
            ApiError::Protocol { .. } | ApiError::IncompleteListing { .. } => false,
        }
    }
}

/// One failed attempt, and whether trying again may help.
struct Failure {
    error: ApiError,
    transient: bool,
    retry_after: Option<Duration>,
    status: Option<StatusCode>,
}

/// Whether a request may simply be sent again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    /// Sending it twice could do it twice: the caller checks what happened first.
    Checked,
}

/// A whole collection as listed, and the pages it took.
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// Pages read (for a listing without a total, the empty page that ends it included).
    pub pages: usize,
}

/// One read of a listing with a total.
enum Read<T> {
    Whole(Listing<T>),
    /// What does not add up, for the error if reading again does not help.
    DoesNotAddUp(String),
}

/// A client for one network. The token is sent only in the Authorization header, which is
/// marked sensitive so it is never printed, and kept beside it only to be redacted from what
/// an API quotes back.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    token: Arc<str>,
    base: String,
    network: String,
    /// Shared by clones, so concurrent tasks together stay under `requests_per_second`; none
    /// for the in-process simulator, which has no rate limit to respect.
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Retries made so far, by all clones (reported by apply).
    retries: Arc<AtomicU64>,
    concurrency: usize,
    page_size: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

fn protocol(method: &str, path: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Protocol {
        method: method.into(),
        path: path.into(),
        detail: detail.into(),
    }
}

/// The API token in the environment variable `name`. A token pasted from a file often brings
/// its line end along: never part of it. Unset or empty is [`ApiError::MissingToken`].
pub fn token_from_env(name: &str) -> Result<String, ApiError> {
    std::env::var(name)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::MissingToken(name.to_string()))
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
            protocol(
                "-",
                "-",
                format!("api_version gives an invalid Accept header: {e}"),
            )
        })?;
        headers.insert(ACCEPT, accept);
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            protocol(
                "-",
                "-",
                "the token contains characters not allowed in an HTTP header",
            )
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("speakap-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| protocol("-", "-", e.to_string()))?;
        let rate = NonZeroU32::new(requests_per_second).unwrap_or(NonZeroU32::MIN);
        Ok(Client {
            http,
            token: token.into(),
            base: base_url.trim_end_matches('/').to_string(),
            network: network.to_string(),
            // Evenly spaced, without the burst governor allows by default: an API counting
            // requests per window must never see more than the rate, even when the moment its
            // window starts differs from ours (a burst at the edge was answered with 429).
            limiter: Some(Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(NonZeroU32::MIN),
            ))),
            retries: Arc::default(),
            concurrency: 4,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// How many requests may be under way at once (pages fetched in parallel).
    pub fn with_concurrency(mut self, concurrency: usize) -> Client {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sends as fast as answers come: for the in-process simulator only, which has no rate
    /// limit (a real API's limit is respected through `requests_per_second`).
    pub fn unthrottled(mut self) -> Client {
        self.limiter = None;
        self
    }

    /// How many items a listing page is asked for (the API may serve fewer).
    pub fn with_page_size(mut self, page_size: usize) -> Client {
        self.page_size = page_size.max(1);
        self
    }

    /// Retries made so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn path(&self, rest: &str) -> String {
        format!("/networks/{}/{rest}", self.network)
    }

    fn backoff() -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(MAX_ATTEMPTS - 1)
            .with_jitter()
    }

    /// One request, no retry.
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<String, Failure> {
        let url = format!("{}{path}", self.base);
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let unreachable = |e: reqwest::Error| Failure {
            transient: !e.is_builder(),
            error: ApiError::Unreachable {
                url: self.base.clone(),
                detail: root_cause(&e),
                maybe_sent: !e.is_connect(),
            },
            retry_after: None,
            status: None,
        };
        let response = build(self.http.request(method.clone(), &url))
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Not `text()`: that copies a valid UTF-8 body once more, and pages are megabytes.
        let body = response.bytes().await.map_err(unreachable)?;
        let text = String::from_utf8(body.into())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if status.is_success() {
            return Ok(text);
        }
        let transient = matches!(status.as_u16(), 429 | 502 | 503 | 504);
        // An API or a proxy in between may quote the request back, its Authorization too.
        let redacted = |text: &str| redact_credentials(text, &[&self.token]);
        let error = match serde_json::from_str::<wire::ErrorBody>(&text) {
            Ok(body) => ApiError::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                code: body.code,
                message: redacted(&body.message),
            },
            Err(_) if transient => ApiError::Unavailable {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                attempts: 1,
            },
            Err(_) => protocol(
                method.as_str(),
                path,
                format!(
                    "HTTP {status} without an error body: {}",
                    excerpt(&redacted(&text))
                ),
            ),
        };
        Err(Failure {
            error,
            transient,
            retry_after,
            status: Some(status),
        })
    }

    /// Sends a request; retries transient failures when `repeat` is `Safe`, and 429 always.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        repeat: Repeat,
        build: impl Fn(RequestBuilder) -> RequestBuilder + Sync,
    ) -> Result<String, Failure> {
        let attempts = AtomicU64::new(0);
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(&method, path, &build).await
        })
        .retry(Self::backoff().with_max_times(MAX_THROTTLED_ATTEMPTS - 1))
        .when(|f: &Failure| {
            let not_handled = f.status == Some(StatusCode::TOO_MANY_REQUESTS);
            let tries = attempts.load(Ordering::Relaxed) as usize;
            (repeat == Repeat::Safe || not_handled)
                && f.transient
                && (not_handled || tries < MAX_ATTEMPTS)
                && f.retry_after.is_none_or(|d| d <= MAX_RETRY_AFTER)
        })
        .adjust(|f: &Failure, delay| delay.map(|d| f.retry_after.map_or(d, |after| after.max(d))))
        .notify(|f: &Failure, delay| {
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("retrying {method} {path} in {delay:?}: {}", f.error);
        })
        .await;
        result.map_err(|mut f| {
            if f.transient {
                let tries = attempts.load(Ordering::Relaxed) as usize;
                if let (Some(status), ApiError::Api { .. } | ApiError::Unavailable { .. }) =
                    (f.status, &f.error)
                {
                    f.error = ApiError::Unavailable {
                        method: method.to_string(),
                        path: path.to_string(),
                        status: status.as_u16(),
                        attempts: tries,
                    };
                }
            }
            f
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder + Sync,
    ) -> Result<T, ApiError> {
        let text = self
            .send_raw(method.clone(), path, Repeat::Safe, build)
            .await
            .map_err(|f| f.error)?;
        serde_json::from_str(&text).map_err(|e| {
            protocol(
                method.as_str(),
                path,
                format!("cannot decode the body: {e}"),
            )
        })
    }

    /// A non-idempotent call: after a transient failure, `check` says whether it took effect
    /// (`Some(result)`); only if it did not is the call made again, after a backoff.
    async fn send_checked<T, C, F>(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder + Sync,
        decode: impl Fn(String) -> Result<T, ApiError>,
        check: C,
    ) -> Result<T, ApiError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<Option<T>, ApiError>>,
    {
        let mut delays = Self::backoff().build();
        loop {
            let failure = match self
                .send_raw(method.clone(), path, Repeat::Checked, &build)
                .await
            {
                Ok(text) => return decode(text),
                Err(failure) => failure,
            };
            if !failure.transient {
                return Err(failure.error);
            }
            if let Some(done) = check().await? {
                return Ok(done);
            }
            let Some(delay) = delays.next() else {
                return Err(failure.error);
            };
            let delay = failure.retry_after.map_or(delay, |after| after.max(delay));
            if delay > MAX_RETRY_AFTER {
                return Err(failure.error);
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("retrying {method} {path} in {delay:?}: {}", failure.error);
            tokio::time::sleep(delay).await;
        }
    }

    /// Every user of the network with their memberships.
    pub async fn list_users(&self) -> Result<Vec<User>, ApiError> {
        Ok(self.list_users_as(|user| user).await?.items)
    }

    /// Every user, each turned into a `T` as their page arrives: a large network is then never
    /// held both as wire users and as `T`s.
    pub async fn list_users_as<T: Send + 'static>(
        &self,
        convert: impl Fn(User) -> T + Send + Sync + 'static,
    ) -> Result<Listing<T>, ApiError> {
        let path = self.path("users/");
        self.paged(
            path,
            &[("embed", "memberships")],
            "accounts",
            move |page: wire::UsersPage| {
                let users = page.embedded.users.into_iter().map(&convert).collect();
                (page.total, users)
            },
        )
        .await
    }

    /// The first page of a listing (`users/` with memberships, or `groups/`) as the API sends
    /// it, for checking its fields (`doctor`).
    pub async fn first_page_json(&self, collection: &str) -> Result<serde_json::Value, ApiError> {
        let path = self.path(collection);
        let embed: &[(&str, &str)] = if collection == "users/" {
            &[("embed", "memberships")]
        } else {
            &[]
        };
        self.send(Method::GET, &path, |r| {
            r.query(embed)
                .query(&[("offset", 0), ("limit", self.page_size)])
        })
        .await
    }

    pub async fn list_groups(&self) -> Result<Listing<Group>, ApiError> {
        let path = self.path("groups/");
        self.paged(path, &[], "groups", |page: wire::GroupsPage| {
            (page.total, page.embedded.groups)
        })
        .await
    }

    /// Reads a whole listing. With a total, the first page is read, then the rest concurrently:
    /// the API may serve fewer items than asked for, and the first page's length is then the step
    /// between offsets. A listing that does not add up (a page short or long for its place, the
    /// total changing between pages) is read again, up to [`LISTING_READS`] times, then fails.
    /// Without a total, pages are read one after the other until an empty one.
    ///
    /// Each page is fetched and decoded in a task of its own, so that decoding a large network
    /// uses every core rather than the one awaiting the listing.
    async fn paged<P, T>(
        &self,
        path: String,
        query: &'static [(&'static str, &'static str)],
        noun: &'static str,
        split: impl Fn(P) -> Page<T> + Send + Sync + 'static,
    ) -> Result<Listing<T>, ApiError>
    where
        P: DeserializeOwned + Send + 'static,
        T: Send + 'static,
    {
        let split = Arc::new(split);
        let path = Arc::<str>::from(path);
        let page = |offset: usize| {
            let (client, split, path) = (self.clone(), split.clone(), path.clone());
            let failed = path.clone();
            let task = tokio::spawn(async move {
                let offset = offset.to_string();
                let limit = client.page_size.to_string();
                let page: P = client
                    .send(Method::GET, &path, |r| {
                        r.query(query)
                            .query(&[("offset", offset.as_str()), ("limit", limit.as_str())])
                    })
                    .await?;
                Ok::<_, ApiError>(split(page))
            });
            async move {
                task.await
                    .map_err(|e| protocol("GET", &failed, format!("page task failed: {e}")))?
            }
        };
        let mut detail = String::new();
        for read in 1..=LISTING_READS {
            let (total, first) = page(0).await?;
            let Some(total) = total else {
                return self.paged_to_empty(&path, noun, first, &page).await;
            };
            match self.paged_to_total(total, first, noun, &page).await? {
                Read::Whole(listing) => return Ok(listing),
                Read::DoesNotAddUp(found) => {
                    if read < LISTING_READS {
                        tracing::warn!(
                            "the listing {path} does not add up ({found}); reading it again"
                        );
                    }
                    detail = found;
                }
            }
        }
        Err(ApiError::IncompleteListing {
            path: path.to_string(),
            noun,
            detail,
            reads: LISTING_READS,
        })
    }

    /// The rest of a listing whose first page reported `total`, or what does not add up.
    async fn paged_to_total<T, F>(
        &self,
        total: usize,
        first: Vec<T>,
        noun: &str,
        page: impl Fn(usize) -> F,
    ) -> Result<Read<T>, ApiError>
    where
        F: Future<Output = Result<Page<T>, ApiError>>,
    {
        if first.len() > total || (first.is_empty() && total > 0) {
            return Ok(Read::DoesNotAddUp(format!(
                "{total} {noun} reported, {} on the first page",
                first.len()
            )));
        }
        // The next page starts where this one ended, however many the API chose to serve.
        let step = first.len().max(1);
        let offsets: Vec<usize> = (first.len()..total).step_by(step).collect();
        let page = &page;
        let mut pages: Vec<(usize, Page<T>)> = futures_util::stream::iter(offsets)
            .map(|offset| async move { page(offset).await.map(|served| (offset, served)) })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        pages.sort_by_key(|(offset, _)| *offset);
        let received = first.len()
            + pages
                .iter()
                .map(|(_, (_, items))| items.len())
                .sum::<usize>();
        let odd = pages.iter().find_map(|(offset, (reported, items))| {
            let expected = step.min(total - offset);
            if *reported != Some(total) {
                Some(match reported {
                    Some(other) => format!("the total changed from {total} to {other} while it was read"),
                    None => format!("the page at offset {offset} reports no total"),
                })
            } else if items.len() != expected {
                Some(format!(
                    "{total} {noun} reported, {received} received: the page at offset {offset} held {} where {expected} were expected",
                    items.len()
                ))
            } else {
                None
            }
        });
        if let Some(odd) = odd {
            return Ok(Read::DoesNotAddUp(odd));
        }
        let count = 1 + pages.len();
        let mut items = first;
        items.reserve(total - items.len());
        items.extend(pages.into_iter().flat_map(|(_, (_, items))| items));
        Ok(Read::Whole(Listing {
            items,
            pages: count,
        }))
    }

    /// The rest of a listing that reports no total: page after page until an empty one, each
    /// offset past the items received.
    async fn paged_to_empty<T, F>(
        &self,
        path: &str,
        noun: &str,
        first: Vec<T>,
        page: impl Fn(usize) -> F,
    ) -> Result<Listing<T>, ApiError>
    where
        F: Future<Output = Result<Page<T>, ApiError>>,
    {
        let mut items = first;
        let mut pages = 1;
        let mut last = items.len();
        while last > 0 {
            if items.len() >= MAX_LISTED {
                return Err(protocol(
                    "GET",
                    path,
                    format!(
                        "{} {noun} served and no empty page, which ends a listing without a total; stopped reading",
                        items.len()
                    ),
                ));
            }
            let (_, served) = page(items.len()).await?;
            pages += 1;
            last = served.len();
            items.extend(served);
        }
        Ok(Listing { items, pages })
    }

    /// One user with their memberships.
    pub async fn get_user(&self, user: &str) -> Result<User, ApiError> {
        let path = self.path(&format!("users/{user}/"));
        self.send(Method::GET, &path, |r| r.query(&[("embed", "memberships")]))
            .await
    }

    /// The user with this email address, if any. INFERRED: the `email` filter of the users list.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, ApiError> {
        let path = self.path("users/");
        let page: wire::UsersPage = self
            .send(Method::GET, &path, |r| {
                r.query(&[("email", email), ("embed", "memberships"), ("limit", "1")])
            })
            .await?;
        Ok(page.embedded.users.into_iter().next())
    }

    /// The user, or `None` once gone (404).
    async fn user_if_present(&self, user: &str) -> Result<Option<User>, ApiError> {
        match self.get_user(user).await {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.code() == Some(-4) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Invites up to [`MAX_INVITES_PER_CALL`] people; the result has one entry per invitee. After
    /// a failure that may have taken effect, every address is looked up before inviting again.
    pub async fn invite(&self, invitees: Vec<Invitee>) -> Result<Vec<InviteResult>, ApiError> {
        let path = self.path("invite");
        let mut found = Vec::new();
        let mut pending = invitees;
        let mut delays = Self::backoff().build();
        loop {
            let body = InviteRequest {
                invitees: pending.clone(),
            };
            let failure = match self
                .send_raw(Method::POST, &path, Repeat::Checked, |r| r.json(&body))
                .await
            {
                Ok(text) => {
                    let response: InviteResponse = serde_json::from_str(&text).map_err(|e| {
                        protocol("POST", &path, format!("cannot decode the body: {e}"))
                    })?;
                    found.extend(response.invitees);
                    return Ok(found);
                }
                Err(failure) if failure.transient => failure,
                Err(failure) => return Err(failure.error),
            };
            let mut still = Vec::new();
            for invitee in pending {
                match self.find_by_email(&invitee.email).await? {
                    Some(user) => found.push(InviteResult {
                        email: invitee.email.clone(),
                        status: "invitee".into(),
                        eid: Some(user.eid),
                        activation_code: None,
                    }),
                    None => still.push(invitee),
                }
            }
            if still.is_empty() {
                return Ok(found);
            }
            pending = still;
            let Some(delay) = delays.next() else {
                return Err(failure.error);
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(
                failure
                    .retry_after
                    .map_or(delay, |after| after.max(delay).min(MAX_RETRY_AFTER)),
            )
            .await;
        }
    }

    /// INFERRED endpoint: creates an SSO account (no invitation mail); returns it.
    pub async fn create_sso_user(&self, user: &wire::NewSsoUser) -> Result<User, ApiError> {
        let path = self.path("users/");
        let decode = |text: String| {
            serde_json::from_str(&text).map_err(|e| protocol("POST", &path, e.to_string()))
        };
        self.send_checked(
            Method::POST,
            &path,
            |r| r.json(user),
            decode,
            || self.find_by_email(&user.primary_email),
        )
        .await
    }

    /// INFERRED endpoint: profile update, including the XID. Idempotent.
    pub async fn update_user(&self, user: &str, update: &UserUpdate) -> Result<(), ApiError> {
        let path = self.path(&format!("users/{user}/"));
        self.send_raw(Method::PUT, &path, Repeat::Safe, |r| r.json(update))
            .await
            .map(drop)
            .map_err(|f| f.error)
    }

    /// Adds the user to groups as member; returns the memberships in those groups.
    pub async fn add_to_groups(
        &self,
        user: &str,
        groups: &[String],
    ) -> Result<Vec<Membership>, ApiError> {
        let path = self.path(&format!("users/{user}/groups/add"));
        let form: Vec<(&str, &str)> = groups.iter().map(|g| ("groups[]", g.as_str())).collect();
        let decode = |text: String| {
            serde_json::from_str::<wire::MembershipsResponse>(&text)
                .map(|r| r.memberships)
                .map_err(|e| protocol("POST", &path, e.to_string()))
        };
        // Took effect when the user is in every group now.
        let check = || async {
            let current = self.get_user(user).await?;
            let memberships: Vec<Membership> = current
                .embedded
                .memberships
                .into_iter()
                .filter(|m| m.group.as_ref().is_some_and(|g| groups.contains(g)))
                .collect();
            Ok((memberships.len() == groups.len()).then_some(memberships))
        };
        self.send_checked(Method::POST, &path, |r| r.form(&form), decode, check)
            .await
    }

    pub async fn remove_from_groups(&self, user: &str, groups: &[String]) -> Result<(), ApiError> {
        let path = self.path(&format!("users/{user}/groups/remove"));
        let form: Vec<(&str, &str)> = groups.iter().map(|g| ("groups[]", g.as_str())).collect();
        let check = || async {
            let current = self.get_user(user).await?;
            let left = current
                .embedded
                .memberships
                .iter()
                .any(|m| m.group.as_ref().is_some_and(|g| groups.contains(g)));
            Ok((!left).then_some(()))
        };
        self.send_checked(Method::POST, &path, |r| r.form(&form), |_| Ok(()), check)
            .await
    }

    /// Sets membership roles: `(membership EID, role)` pairs, for groups and for the network. Idempotent.
    pub async fn change_roles(&self, changes: &[(String, String)]) -> Result<(), ApiError> {
        let path = self.path("changeroles");
        let form: Vec<(String, &str)> = changes
            .iter()
            .map(|(m, role)| (format!("memberships[{m}]"), role.as_str()))
            .collect();
        self.send_raw(Method::POST, &path, Repeat::Safe, |r| r.form(&form))
            .await
            .map(drop)
            .map_err(|f| f.error)
    }

    /// INFERRED endpoint: suspends a user (cannot log in; recoverable for 30 days).
    pub async fn suspend(&self, user: &str) -> Result<(), ApiError> {
        self.user_action(user, "suspend", |u| {
            u.is_some_and(|u| u.status == "suspended")
        })
        .await
    }

    /// INFERRED endpoint: reactivates a suspended user.
    pub async fn restore(&self, user: &str) -> Result<(), ApiError> {
        self.user_action(user, "restore", |u| {
            u.is_some_and(|u| u.status != "suspended")
        })
        .await
    }

    /// INFERRED endpoint: removes the user's personal data and the user.
    pub async fn anonymize(&self, user: &str) -> Result<(), ApiError> {
        self.user_action(user, "anonymize", |u| u.is_none()).await
    }

    async fn user_action(
        &self,
        user: &str,
        action: &str,
        done: impl Fn(Option<&User>) -> bool,
    ) -> Result<(), ApiError> {
        let path = self.path(&format!("users/{user}/{action}"));
        let check = || async { Ok(done(self.user_if_present(user).await?.as_ref()).then_some(())) };
        self.send_checked(Method::POST, &path, |r| r, |_| Ok(()), check)
            .await
    }

    /// Removes a user from the network through their network membership (202 Accepted).
    pub async fn remove_from_network(
        &self,
        user: &str,
        network_membership: &str,
    ) -> Result<(), ApiError> {
        let path = self.path(&format!("memberships/{network_membership}/"));
        let check = || async { Ok(self.user_if_present(user).await?.is_none().then_some(())) };
        self.send_checked(
            Method::DELETE,
            &path,
            |r| r.query(&[("resolution", "remove_from_network")]),
            |_| Ok(()),
            check,
        )
        .await
    }
}

/// `Retry-After` in seconds, or as an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value.trim()).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

fn root_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::to_string(&soon.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        let wait = parse_retry_after(&date).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?} from {date}"
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
