//! One apply per network at a time on one machine: an advisory lock on a file in the git
//! directory. The operating system releases it when the process ends, however it ends, so a
//! crashed apply never leaves a stale lock behind; the file's text only names the holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
    path: PathBuf,
}

impl ApplyLock {
    /// Takes the lock for `network`, or says who holds it. With `wait`, blocks until it is free.
    pub fn acquire(state_dir: &Path, network: &str, wait: bool) -> Result<ApplyLock, Error> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            Error::input(format!(
                "cannot create {}: {e}; apply needs to write to the repository's git directory",
                state_dir.display()
            ))
        })?;
        let path = state_dir.join(format!("apply-{network}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::input(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if wait => {
                tracing::info!(
                    "waiting for the apply that holds {}: {}",
                    path.display(),
                    holder(&mut file)
                );
                file.lock()
                    .map_err(|e| Error::input(format!("cannot lock {}: {e}", path.display())))?;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::input(format!(
                    "another apply of network {network} is running ({}); wait for it to end, or pass --wait to queue behind it",
                    holder(&mut file)
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::input(format!("cannot lock {}: {e}", path.display())));
            }
        }
        let started = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_default();
        let text = format!(
            "pid {} on host {} since {started}\n",
            std::process::id(),
            hostname()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(|e| Error::input(format!("cannot write {}: {e}", path.display())))?;
        Ok(ApplyLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() {
        "its holder has not named itself yet".into()
    } else {
        format!("held by {text}")
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = ApplyLock::acquire(dir.path(), "0123456789abcdef", false).unwrap();
        let refused = ApplyLock::acquire(dir.path(), "0123456789abcdef", false).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        // Another network is another lock.
        ApplyLock::acquire(dir.path(), "fedcba9876543210", false).unwrap();
        drop(first);
        ApplyLock::acquire(dir.path(), "0123456789abcdef", false).unwrap();
    }
}
