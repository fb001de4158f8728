//! A local Speakap API simulator (axum): the documented endpoints with HAL bodies, 16-hex EIDs,
//! bearer-token auth, the versioned Accept header, error codes and paging. Endpoints and shapes the
//! public documentation does not show are marked INFERRED.
//!
//! Used by the tests, the quick start (`speakap.url: embedded`) and the `speakap-sim` binary.

mod faults;
mod network;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::oneshot;

pub use faults::{Faults, Stats};
pub use network::{Network, Seed, SeedGroup, SeedUser, SimError};

use crate::speakap::wire;

/// How to start a simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub network: String,
    /// The bearer token clients must send (`{appEID}_{appSecret}` in the real API).
    pub token: String,
    /// Where the network is kept between runs; loaded from here when the file exists.
    pub state_file: Option<PathBuf>,
    /// The starting network when there is no state file yet.
    pub seed: Option<Seed>,
    /// Faults to inject (none by default); changeable at run time with `PUT /_sim/faults`.
    pub faults: Faults,
    /// Seed of the fault dice, so a faulty run can be repeated.
    pub fault_seed: u64,
    /// The most items one page of a listing holds, whatever `limit` asks for
    /// ([`DEFAULT_MAX_PAGE_SIZE`] unless set).
    pub max_page_size: usize,
}

/// The most items a page holds unless configured: the Speakap documentation does not give the
/// API's cap, so the simulator keeps a small one and clients must follow shorter pages.
pub const DEFAULT_MAX_PAGE_SIZE: usize = 100;

struct Shared {
    network: Mutex<Network>,
    token: String,
    state_file: Option<PathBuf>,
    faults: faults::FaultState,
    max_page_size: usize,
    /// Held while the state file is written: the periodic writer may still be busy when
    /// shutdown writes the final state.
    writing: Mutex<()>,
}

impl Shared {
    fn flush(&self) -> std::io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let _writing = self.writing.lock().expect("state writer lock");
        let text = {
            let mut network = self.network.lock().expect("simulator state lock");
            if !network.take_dirty() {
                return Ok(());
            }
            serde_json::to_string(&*network).expect("the simulated network serializes")
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Write then rename, so a killed simulator never leaves half a file. A file left at the
        // temporary name goes first: were it a symlink, writing would follow it elsewhere.
        let temporary = path.with_extension("json.tmp");
        match std::fs::remove_file(&temporary) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, path)
    }
}

/// How often a changed network is written to its state file, at least.
const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// A simulator serving on a loopback port.
pub struct RunningSim {
    pub url: String,
    /// The network came from a state file made from another seed than the one given: edits to
    /// the seed are not in it until the state file is removed.
    pub seed_changed: bool,
    shared: Arc<Shared>,
    shutdown: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    flusher: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// Stops serving and writes the state file.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        self.server.await.map_err(std::io::Error::other)??;
        self.flusher.abort();
        self.shared.flush()
    }
}

/// Loads the network (state file, else seed, else empty) and serves it on `addr`.
pub async fn start(addr: SocketAddr, config: SimConfig) -> Result<RunningSim, SimError> {
    let (network, seed_changed) = load_network(&config)?;
    let shared = Arc::new(Shared {
        network: Mutex::new(network),
        token: config.token,
        state_file: config.state_file,
        faults: faults::FaultState::new(config.faults, config.fault_seed),
        max_page_size: config.max_page_size.max(1),
        writing: Mutex::new(()),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| SimError::State(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| SimError::State(e.to_string()))?;
    let (shutdown, on_shutdown) = oneshot::channel::<()>();
    let app = router(shared.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = on_shutdown.await;
            })
            .await
    });
    let flusher = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                // Serializing holds the network lock: a large network is written less often, so
                // that writing never takes more than about a tenth of the time.
                let started = std::time::Instant::now();
                let writer = shared.clone();
                match tokio::task::spawn_blocking(move || writer.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("simulator: cannot write state: {e}"),
                    Err(e) => tracing::warn!("simulator: state writer failed: {e}"),
                }
                let pause = (started.elapsed() * 10).max(FLUSH_INTERVAL);
                tokio::time::sleep(pause).await;
            }
        })
    };
    Ok(RunningSim {
        url: format!("http://{local}"),
        seed_changed,
        shared,
        shutdown,
        server,
        flusher,
    })
}

/// The network from the state file, else from the seed, else empty; and whether the seed has
/// changed since the state file's network was made from it.
fn load_network(config: &SimConfig) -> Result<(Network, bool), SimError> {
    Ok(match &config.state_file {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SimError::State(format!("{}: {e}", path.display())))?;
            let mut network: Network = serde_json::from_str(&text)
                .map_err(|e| SimError::State(format!("{}: {e}", path.display())))?;
            network.reindex();
            if network.network != config.network {
                return Err(SimError::State(format!(
                    "{} holds network {}, not {}; delete it to start again",
                    path.display(),
                    network.network,
                    config.network
                )));
            }
            let seed_changed = match (&network.seed_digest, &config.seed) {
                (Some(recorded), Some(seed)) => *recorded != seed.digest(),
                _ => false,
            };
            (network, seed_changed)
        }
        _ => {
            let mut network = Network::new(&config.network);
            if let Some(seed) = &config.seed {
                network.apply_seed(seed)?;
            }
            (network, false)
        }
    })
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/networks/{network}/users/",
            get(list_users).post(create_sso_user),
        )
        .route(
            "/networks/{network}/users/{user}/",
            get(get_user).put(update_user),
        )
        .route(
            "/networks/{network}/users/{user}/groups/add",
            post(add_groups),
        )
        .route(
            "/networks/{network}/users/{user}/groups/remove",
            post(remove_groups),
        )
        .route(
            "/networks/{network}/groups/",
            get(list_groups).post(create_group),
        )
        .route(
            "/networks/{network}/users/{user}/suspend",
            post(suspend_user),
        )
        .route(
            "/networks/{network}/users/{user}/restore",
            post(restore_user),
        )
        .route(
            "/networks/{network}/users/{user}/anonymize",
            post(anonymize_user),
        )
        .route("/networks/{network}/invite", post(invite))
        .route("/networks/{network}/changeroles", post(change_roles))
        .route(
            "/networks/{network}/memberships/{membership}/",
            delete(delete_membership),
        )
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            check_request,
        ))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            inject_faults,
        ));
    let admin = Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/stats", get(get_stats))
        .route_layer(middleware::from_fn_with_state(shared.clone(), check_token));
    // Unauthenticated on purpose: speakap-sync asks it (without the token) whether a loopback
    // URL is a simulator, which may then be applied to as of a simulated day.
    let identity = Router::new().route("/_sim/identity", get(get_identity));
    api.merge(admin)
        .merge(identity)
        .fallback(|| async { SimError::NotFound("no such endpoint".into()) })
        .with_state(shared)
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            SimError::Invalid(_) | SimError::State(_) => (StatusCode::BAD_REQUEST, -1),
            SimError::Unauthorized => (StatusCode::UNAUTHORIZED, -2),
            SimError::NotFound(_) => (StatusCode::NOT_FOUND, -4),
            SimError::AlreadyMember(_) => (StatusCode::CONFLICT, -9),
            SimError::EmailInUse(_) => (StatusCode::FORBIDDEN, -15),
            SimError::Gone(_) => (StatusCode::GONE, -10),
        };
        let body = wire::ErrorBody {
            code,
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

async fn inject_faults(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    faults::inject(&shared.faults, request, next).await
}

async fn check_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", shared.token);
    if request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return SimError::Unauthorized.into_response();
    }
    next.run(request).await
}

async fn get_identity(State(shared): App) -> Result<Json<serde_json::Value>, SimError> {
    if shared.faults.get().as_real_network {
        return Err(SimError::NotFound("no such endpoint".into()));
    }
    Ok(Json(serde_json::json!({"simulator": "speakap-sim"})))
}

async fn get_faults(State(shared): App) -> Json<Faults> {
    Json(shared.faults.get())
}

async fn put_faults(State(shared): App, Json(faults): Json<Faults>) -> StatusCode {
    shared.faults.set(faults);
    StatusCode::NO_CONTENT
}

async fn get_stats(State(shared): App) -> Json<Stats> {
    Json(shared.faults.stats())
}

/// Auth and Accept checks, and the network in the path must be the simulated one.
async fn check_request(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let expected = format!("Bearer {}", shared.token);
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return SimError::Unauthorized.into_response();
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !(accept.starts_with("application/vnd.speakap.api-v") && accept.ends_with("+json+hal")) {
        return SimError::Invalid(format!(
            "unsupported Accept header `{accept}`; send application/vnd.speakap.api-v1.8.2+json+hal"
        ))
        .into_response();
    }
    let network = params
        .iter()
        .find(|(k, _)| k == "network")
        .map(|(_, v)| v.as_str());
    let simulated = shared
        .network
        .lock()
        .expect("simulator state lock")
        .network
        .clone();
    if network != Some(simulated.as_str()) {
        return SimError::NotFound(format!("network {} not found", network.unwrap_or_default()))
            .into_response();
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    embed: Option<String>,
    /// INFERRED filter: only the user with this email address.
    #[serde(default)]
    email: Option<String>,
}

fn default_limit() -> usize {
    25
}

type App = State<Arc<Shared>>;

fn with_network<T>(
    shared: &Shared,
    f: impl FnOnce(&mut Network) -> Result<T, SimError>,
) -> Result<T, SimError> {
    let mut network = shared.network.lock().expect("simulator state lock");
    f(&mut network)
}

/// A page of users as the API answers it; `U` is a user, or one already held as JSON.
fn page<U: serde::Serialize>(
    offset: usize,
    limit: usize,
    (total, users): wire::Page<U>,
) -> Response {
    Json(wire::UsersPage {
        total,
        offset,
        limit,
        embedded: wire::EmbeddedUsers { users },
    })
    .into_response()
}

async fn list_users(
    State(shared): App,
    Query(paging): Query<Paging>,
) -> Result<Response, SimError> {
    let limit = paging.limit.clamp(1, shared.max_page_size);
    let embed = paging
        .embed
        .as_deref()
        .is_some_and(|e| e.split(',').any(|p| p == "memberships"));
    let offset = paging.offset;
    let faults = shared.faults.get();
    with_network(&shared, |n| {
        Ok(match (embed, paging.email.as_deref()) {
            (true, None) => page(
                offset,
                limit,
                faults.listing(offset, n.listing_page(offset, limit)),
            ),
            (embed, None) => {
                let listed = n.users_page(offset, limit, embed, None);
                page(offset, limit, faults.listing(offset, listed))
            }
            // Listing faults touch listings of the collection, not lookups by address.
            (embed, email) => {
                let (total, users) = n.users_page(offset, limit, embed, email);
                page(offset, limit, (Some(total), users))
            }
        })
    })
}

async fn get_user(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
) -> Result<Json<wire::User>, SimError> {
    with_network(&shared, |n| n.user(&user, true).map(Json))
}

/// INFERRED endpoint: profile update.
async fn update_user(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
    Json(update): Json<wire::UserUpdate>,
) -> Result<Json<wire::User>, SimError> {
    with_network(&shared, |n| {
        n.update_user(&user, update)?;
        n.user(&user, true).map(Json)
    })
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// INFERRED endpoint: SSO account creation.
async fn create_sso_user(
    State(shared): App,
    Json(user): Json<wire::NewSsoUser>,
) -> Result<(StatusCode, Json<wire::User>), SimError> {
    with_network(&shared, |n| {
        n.create_sso_user(&user)
            .map(|u| (StatusCode::CREATED, Json(u)))
    })
}

/// INFERRED endpoint.
async fn suspend_user(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, SimError> {
    with_network(&shared, |n| {
        n.suspend(&user, unix_now())
            .map(|()| StatusCode::NO_CONTENT)
    })
}

/// INFERRED endpoint.
async fn restore_user(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, SimError> {
    with_network(&shared, |n| {
        n.restore(&user, unix_now())
            .map(|()| StatusCode::NO_CONTENT)
    })
}

/// INFERRED endpoint.
async fn anonymize_user(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, SimError> {
    with_network(&shared, |n| {
        n.anonymize(&user).map(|()| StatusCode::NO_CONTENT)
    })
}

async fn list_groups(
    State(shared): App,
    Query(paging): Query<Paging>,
) -> Result<Json<wire::GroupsPage>, SimError> {
    let limit = paging.limit.clamp(1, shared.max_page_size);
    let faults = shared.faults.get();
    with_network(&shared, |n| {
        let (total, groups) = faults.listing(paging.offset, n.groups_page(paging.offset, limit));
        Ok(Json(wire::GroupsPage {
            total,
            offset: paging.offset,
            limit,
            embedded: wire::EmbeddedGroups { groups },
        }))
    })
}

#[derive(Deserialize)]
struct NewGroup {
    name: String,
    #[serde(rename = "type")]
    group_type: String,
}

async fn create_group(
    State(shared): App,
    Json(group): Json<NewGroup>,
) -> Result<(StatusCode, Json<wire::Group>), SimError> {
    with_network(&shared, |n| {
        n.create_group(&group.name, &group.group_type)
            .map(|g| (StatusCode::CREATED, Json(g)))
    })
}

async fn invite(
    State(shared): App,
    Json(request): Json<wire::InviteRequest>,
) -> Result<Json<wire::InviteResponse>, SimError> {
    if request.invitees.is_empty() || request.invitees.len() > 1000 {
        return Err(SimError::Invalid(
            "invitees: between 1 and 1000 per call".into(),
        ));
    }
    with_network(&shared, |n| {
        let invitees = request.invitees.iter().map(|i| n.invite(i)).collect();
        Ok(Json(wire::InviteResponse { invitees }))
    })
}

/// Form bodies such as `groups[]=A&groups[]=B` repeat keys, which serde's form decoding rejects.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn form_groups(body: &[u8]) -> Result<Vec<String>, SimError> {
    let groups: Vec<String> = form_pairs(body)
        .into_iter()
        .filter(|(k, _)| k == "groups[]")
        .map(|(_, v)| v)
        .collect();
    if groups.is_empty() {
        return Err(SimError::Invalid("groups[]: at least one group EID".into()));
    }
    Ok(groups)
}

async fn add_groups(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<wire::MembershipsResponse>, SimError> {
    let groups = form_groups(&body)?;
    with_network(&shared, |n| {
        n.add_to_groups(&user, &groups)
            .map(|memberships| Json(wire::MembershipsResponse { memberships }))
    })
}

async fn remove_groups(
    State(shared): App,
    Path((_, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, SimError> {
    let groups = form_groups(&body)?;
    with_network(&shared, |n| {
        n.remove_from_groups(&user, &groups)
            .map(|()| StatusCode::NO_CONTENT)
    })
}

async fn change_roles(State(shared): App, body: axum::body::Bytes) -> Result<StatusCode, SimError> {
    let mut changes = Vec::new();
    for (key, role) in form_pairs(&body) {
        let membership = key
            .strip_prefix("memberships[")
            .and_then(|k| k.strip_suffix(']'))
            .ok_or_else(|| {
                SimError::Invalid(format!(
                    "unexpected form field `{key}`; expected memberships[EID]=role"
                ))
            })?;
        changes.push((membership.to_string(), role));
    }
    if changes.is_empty() {
        return Err(SimError::Invalid(
            "memberships[EID]=role: at least one".into(),
        ));
    }
    with_network(&shared, |n| {
        n.change_roles(&changes).map(|()| StatusCode::NO_CONTENT)
    })
}

#[derive(Deserialize)]
struct Resolution {
    resolution: String,
}

async fn delete_membership(
    State(shared): App,
    Path((_, membership)): Path<(String, String)>,
    Query(q): Query<Resolution>,
) -> Result<StatusCode, SimError> {
    with_network(&shared, |n| match q.resolution.as_str() {
        "remove_from_group" => n.remove_membership(&membership),
        "remove_from_network" => n.remove_from_network(&membership),
        other => Err(SimError::Invalid(format!(
            "resolution `{other}`: remove_from_group or remove_from_network"
        ))),
    })
    .map(|()| StatusCode::ACCEPTED)
}
