//! The error type of the edges (git, files, HTTP) and how each maps to an exit code.

use crate::diag::Diagnostic;
use crate::speakap::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input a person has to fix: a path, a revision, an HR file, a flag.
    #[error("{0}")]
    Input(String),
    /// The config did not validate; the diagnostics say where and why.
    #[error("the configuration has {} error(s); see above", .0.iter().filter(|d| d.severity == crate::diag::Severity::Error).count())]
    Config(Vec<Diagnostic>),
    #[error("git: {0}")]
    Git(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The plan exceeds a safety threshold and was not forced with its checksum.
    #[error("{0}")]
    Blocked(String),
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    pub fn git(error: git2::Error) -> Self {
        Error::Git(error.message().to_string())
    }

    /// 3 for a plan blocked by a safety threshold, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Blocked(_) => 3,
            _ => 1,
        }
    }
}
