//! speakap-sync: a GitOps reconciler for Speakap user management.
//!
//! The data flows one way: config (git) and HR record → [`resolve::resolve`] → desired users;
//! with the observed network and the ledger → [`plan::plan`] → plan → [`apply::apply`].
//! `resolve` and `plan` are pure; everything that touches the world lives at the edges
//! (`config::repo`, `hr`, `speakap`, `state`, `commands`). See ARCHITECTURE.md.

pub mod apply;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod digest;
pub mod error;
pub mod explain;
pub mod fields;
pub mod forge;
pub mod github;
pub mod gitlab;
pub mod hr;
pub mod notify;
pub mod onboard;
pub mod output;
pub mod plan;
pub mod redact;
pub mod resolve;
pub mod reviewed;
pub mod rules;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod speakap;
pub mod state;
pub mod text;
