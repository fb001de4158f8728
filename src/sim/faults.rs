//! Fault injection for the simulator: what a real API does on a bad day. Set with
//! `speakap-sim serve` flags or at run time with `PUT /_sim/faults`; `GET /_sim/stats` counts
//! what was injected.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::speakap::wire;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every answer.
    pub latency_ms: u64,
    /// Share of requests answered 502/503 (half of them after the request took effect).
    pub error_rate: f64,
    /// Per endpoint: a part of the route (such as `invite` or `groups/add`) → its error rate.
    pub error_rate_by_endpoint: BTreeMap<String, f64>,
    /// Requests per second above which requests are answered 429 with `Retry-After`.
    pub rate_limit: Option<u32>,
    /// Share of requests answered 429 (`Retry-After: 1`) whatever the rate: throttling the
    /// client cannot predict, such as a limit shared with other applications.
    pub throttle_rate: f64,
    /// Share of requests whose connection is dropped without an answer (after the effect).
    pub drop_rate: f64,
    /// Share of requests that hang for `hang_ms` before being answered.
    pub hang_rate: f64,
    pub hang_ms: u64,
    /// Answer as a real Speakap API would, without `/_sim/identity`: speakap-sync then applies
    /// the safeguards it keeps for real networks (tests of those safeguards).
    pub as_real_network: bool,
    /// Every n-th item of the users and groups listings (by its place in the collection) is left
    /// out of its page while `total` still counts it: a listing that loses records. 0: none.
    pub listing_loss_every: usize,
    /// Listings answer without `total`, as a HAL collection may.
    pub listing_without_total: bool,
}

impl Faults {
    /// A listing page starting at `offset` of a collection of `total`, as these faults serve it:
    /// the total it reports and the items left on it.
    pub fn listing<T>(&self, offset: usize, (total, items): (usize, Vec<T>)) -> wire::Page<T> {
        let total = (!self.listing_without_total).then_some(total);
        let every = self.listing_loss_every;
        if every == 0 {
            return (total, items);
        }
        let kept = (offset + 1..)
            .zip(items)
            .filter(|(place, _)| place % every != 0)
            .map(|(_, item)| item)
            .collect();
        (total, kept)
    }
}

/// What the fault layer did, for tests and benchmarks.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub rate_limited: u64,
    pub errors: u64,
    pub dropped: u64,
    pub hung: u64,
}

#[derive(Default)]
pub struct FaultState {
    faults: Mutex<Faults>,
    limiter: Mutex<Option<DefaultDirectRateLimiter>>,
    rng: Mutex<Option<fastrand::Rng>>,
    requests: AtomicU64,
    rate_limited: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    hung: AtomicU64,
}

enum Decision {
    Pass,
    ErrorBefore,
    ErrorAfter,
    Drop,
}

impl FaultState {
    pub fn new(faults: Faults, seed: u64) -> FaultState {
        let state = FaultState {
            rng: Mutex::new(Some(fastrand::Rng::with_seed(seed))),
            ..FaultState::default()
        };
        state.set(faults);
        state
    }

    pub fn set(&self, faults: Faults) {
        *self.limiter.lock().expect("fault lock") = faults
            .rate_limit
            .and_then(NonZeroU32::new)
            .map(|rate| RateLimiter::direct(Quota::per_second(rate)));
        *self.faults.lock().expect("fault lock") = faults;
    }

    pub fn get(&self) -> Faults {
        self.faults.lock().expect("fault lock").clone()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            hung: self.hung.load(Ordering::Relaxed),
        }
    }

    fn roll(&self) -> f64 {
        self.rng
            .lock()
            .expect("fault lock")
            .get_or_insert_with(fastrand::Rng::new)
            .f64()
    }

    fn decide(&self, faults: &Faults, route: &str) -> Decision {
        let error_rate = faults
            .error_rate_by_endpoint
            .iter()
            .find(|(part, _)| route.contains(part.as_str()))
            .map_or(faults.error_rate, |(_, rate)| *rate);
        let roll = self.roll();
        if roll < faults.drop_rate {
            Decision::Drop
        } else if roll < faults.drop_rate + error_rate / 2.0 {
            Decision::ErrorBefore
        } else if roll < faults.drop_rate + error_rate {
            Decision::ErrorAfter
        } else {
            Decision::Pass
        }
    }
}

fn unavailable(status: StatusCode) -> Response {
    let body = wire::ErrorBody {
        code: -5,
        message: "injected failure: try again".into(),
    };
    (status, axum::Json(body)).into_response()
}

/// The middleware: rate limit, latency, hangs, errors and drops, in that order.
pub async fn inject(state: &FaultState, request: Request, next: Next) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let faults = state.get();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let limited = state
        .limiter
        .lock()
        .expect("fault lock")
        .as_ref()
        .and_then(|limiter| limiter.check().err())
        .map(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        });
    let throttled = faults.throttle_rate > 0.0 && state.roll() < faults.throttle_rate;
    if let Some(wait) = limited.or(throttled.then_some(Duration::ZERO)) {
        state.rate_limited.fetch_add(1, Ordering::Relaxed);
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let body = wire::ErrorBody {
            code: -1,
            message: "rate limit exceeded".into(),
        };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&seconds.to_string()).expect("digits"),
        );
        return response;
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.hang_rate > 0.0 && state.roll() < faults.hang_rate {
        state.hung.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(faults.hang_ms)).await;
    }
    let status = if state.roll() < 0.5 {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    match state.decide(&faults, &route) {
        Decision::Pass => next.run(request).await,
        Decision::ErrorBefore => {
            state.errors.fetch_add(1, Ordering::Relaxed);
            unavailable(status)
        }
        Decision::ErrorAfter => {
            state.errors.fetch_add(1, Ordering::Relaxed);
            let _ = next.run(request).await;
            unavailable(status)
        }
        Decision::Drop => {
            state.dropped.fetch_add(1, Ordering::Relaxed);
            let _ = next.run(request).await;
            // A body that fails makes the server abort the connection: the client gets no answer.
            let failing = futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::other("dropped"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from_stream(failing))
                .expect("a response")
        }
    }
}
