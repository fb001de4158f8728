//! The HR export fetched from an SFTP server (russh + russh-sftp). The server's host key must be
//! in the configured known_hosts file: an unknown or changed key is a hard error. The path may be
//! a glob in its last part; the newest matching file (by modification time) is read, and its name
//! and modification time go into the snapshot. Credentials come from environment variables only.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use crate::config::{FileFormat, SftpSource};
use crate::error::Error;

/// A file fetched from the server.
pub struct Fetched {
    /// `sftp://user@host:port/path/of/the/file` as people should see it.
    pub display: String,
    pub file_name: String,
    /// RFC 3339, UTC.
    pub modified: Option<String>,
    pub bytes: Vec<u8>,
}

impl Fetched {
    /// Whether the file is a spreadsheet, by `format` or else by its extension.
    pub fn is_excel(&self, format: FileFormat) -> bool {
        match format {
            FileFormat::Csv => false,
            FileFormat::Excel => true,
            FileFormat::Auto => {
                let lower = self.file_name.to_ascii_lowercase();
                [".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"]
                    .iter()
                    .any(|ext| lower.ends_with(ext))
            }
        }
    }
}

/// Connects, checks the host key against the file at `known_hosts_path` (`source.known_hosts`,
/// resolved inside the repository by the caller), logs in and downloads the newest file matching
/// `source.path`.
pub async fn fetch(source: &SftpSource, known_hosts_path: &Path) -> Result<Fetched, Error> {
    let server = format!("{}:{}", source.host, source.port);
    let known = read_known_hosts(
        known_hosts_path,
        &source.known_hosts,
        &source.host,
        source.port,
    )?;
    let credential = Credential::from_env(source)?;
    let mut session = connect(source, &server, known).await?;
    authenticate(&mut session, source, &server, &credential).await?;
    let sftp = open_sftp(&session, &server).await?;
    let (remote_path, mtime) = locate(&sftp, source, &server).await?;
    let bytes = sftp.read(remote_path.clone()).await.map_err(|e| {
        Error::input(format!(
            "SFTP server {server}: cannot read {remote_path}: {e}"
        ))
    })?;
    let _ = sftp.close().await;
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;

    let modified = mtime.and_then(|t| {
        jiff::Timestamp::from_second(i64::from(t))
            .ok()
            .map(|t| t.to_string())
    });
    let file_name = remote_path
        .rsplit('/')
        .next()
        .unwrap_or(&remote_path)
        .to_string();
    tracing::info!(
        "HR export from SFTP: {remote_path} on {server}, modified {}, {} bytes",
        modified.as_deref().unwrap_or("(unknown)"),
        bytes.len()
    );
    Ok(Fetched {
        display: format!("sftp://{}@{server}{remote_path}", source.user),
        file_name,
        modified,
        bytes,
    })
}

/// Connects, accepting only a host key known_hosts lists for this host.
async fn connect(
    source: &SftpSource,
    server: &str,
    known: Vec<(usize, PublicKey)>,
) -> Result<client::Handle<HostKeyCheck>, Error> {
    let mut config = client::Config {
        inactivity_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    // Ask for the host key types known_hosts has, as OpenSSH does, so a server with several keys
    // shows the one we can check.
    let mut algorithms: Vec<_> = known.iter().map(|(_, k)| k.algorithm()).collect();
    algorithms.dedup();
    if !algorithms.is_empty() {
        let mut preferred: Vec<_> = config
            .preferred
            .key
            .iter()
            .filter(|a| algorithms.contains(a))
            .cloned()
            .collect();
        for a in &algorithms {
            if !preferred.contains(a) {
                preferred.push(a.clone());
            }
        }
        config.preferred.key = preferred.into();
    }
    let verdict = Arc::new(Mutex::new(None));
    let handler = HostKeyCheck {
        known,
        verdict: verdict.clone(),
    };
    let connect = client::connect(
        Arc::new(config),
        (source.host.as_str(), source.port),
        handler,
    );
    match tokio::time::timeout(Duration::from_secs(30), connect).await {
        Err(_) => Err(Error::input(format!(
            "SFTP server {server}: no answer within 30 s; check `source.host` and `source.port`"
        ))),
        Ok(Err(e)) => match verdict.lock().map(|mut v| v.take()).ok().flatten() {
            Some(problem) => Err(Error::input(format!(
                "SFTP server {server}: {problem}; nothing was read. Known hosts file: {}",
                source.known_hosts
            ))),
            None => Err(Error::input(format!(
                "SFTP server {server}: cannot connect: {e}"
            ))),
        },
        Ok(Ok(session)) => Ok(session),
    }
}

/// Logs in with the key or password from the environment; a refusal names the variable.
async fn authenticate(
    session: &mut client::Handle<HostKeyCheck>,
    source: &SftpSource,
    server: &str,
    credential: &Credential,
) -> Result<(), Error> {
    let auth = match credential {
        Credential::Key(key) => {
            let hash = session
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            session
                .authenticate_publickey(
                    &source.user,
                    PrivateKeyWithHashAlg::new(Arc::new((**key).clone()), hash),
                )
                .await
        }
        Credential::Password(password) => {
            session
                .authenticate_password(&source.user, password.as_str())
                .await
        }
    }
    .map_err(|e| Error::input(format!("SFTP server {server}: login failed: {e}")))?;
    if auth.success() {
        return Ok(());
    }
    let what = match credential {
        Credential::Key(_) => format!(
            "the key in ${} was refused for user \"{}\"",
            source.key_env.as_deref().unwrap_or_default(),
            source.user
        ),
        Credential::Password(_) => format!(
            "the password in ${} was refused for user \"{}\"",
            source.password_env.as_deref().unwrap_or_default(),
            source.user
        ),
    };
    Err(Error::input(format!(
        "SFTP server {server}: {what}; check the credential and `source.user`"
    )))
}

async fn open_sftp(
    session: &client::Handle<HostKeyCheck>,
    server: &str,
) -> Result<russh_sftp::client::SftpSession, Error> {
    let channel = session
        .channel_open_session()
        .await
        .map_err(|e| Error::input(format!("SFTP server {server}: cannot open a session: {e}")))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| Error::input(format!("SFTP server {server}: no SFTP subsystem: {e}")))?;
    russh_sftp::client::SftpSession::new(channel.into_stream())
        .await
        .map_err(|e| Error::input(format!("SFTP server {server}: cannot start SFTP: {e}")))
}

/// The file `source.path` names, or for a pattern the newest file matching it, with its
/// modification time.
async fn locate(
    sftp: &russh_sftp::client::SftpSession,
    source: &SftpSource,
    server: &str,
) -> Result<(String, Option<u32>), Error> {
    let (dir, pattern) = match source.path.rsplit_once('/') {
        Some(("", name)) => ("/".to_string(), name.to_string()),
        Some((dir, name)) => (dir.to_string(), name.to_string()),
        None => (".".to_string(), source.path.clone()),
    };
    if !is_glob(&pattern) {
        let metadata = sftp.metadata(source.path.clone()).await.map_err(|e| {
            Error::input(format!(
                "SFTP server {server}: cannot read {}: {e}; check `source.path`",
                source.path
            ))
        })?;
        return Ok((source.path.clone(), metadata.mtime));
    }
    let entries = sftp.read_dir(dir.clone()).await.map_err(|e| {
        Error::input(format!(
            "SFTP server {server}: cannot list {dir}: {e}; check `source.path`"
        ))
    })?;
    let newest = entries
        .filter(|e| !e.file_type().is_dir() && glob_match(&pattern, &e.file_name()))
        .map(|e| (e.metadata().mtime.unwrap_or(0), e.file_name()))
        .max();
    let Some((mtime, name)) = newest else {
        return Err(Error::input(format!(
            "SFTP server {server}: no file in {dir} matches \"{pattern}\"; has the export been uploaded? (`source.path`)"
        )));
    };
    let path = if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    };
    Ok((path, Some(mtime)))
}

enum Credential {
    Key(Box<russh::keys::PrivateKey>),
    Password(String),
}

impl Credential {
    fn from_env(source: &SftpSource) -> Result<Credential, Error> {
        let var = |name: &str, what: &str| {
            std::env::var(name).map_err(|_| {
                Error::input(format!(
                    "the environment variable {name} (the SFTP {what}, named by `source`) is not set"
                ))
            })
        };
        if let Some(name) = &source.key_env {
            let text = var(name, "private key")?;
            let passphrase = match &source.key_passphrase_env {
                Some(p) => Some(var(p, "key passphrase")?),
                None => None,
            };
            // The key's text is never part of the message.
            let key = russh::keys::decode_secret_key(&text, passphrase.as_deref()).map_err(|e| {
                Error::input(format!(
                    "the SFTP private key in ${name} cannot be read ({}); it must be an OpenSSH private key, with `key_passphrase_env` if it is encrypted",
                    key_error_kind(&e)
                ))
            })?;
            return Ok(Credential::Key(Box::new(key)));
        }
        match &source.password_env {
            Some(name) => Ok(Credential::Password(var(name, "password")?)),
            None => Err(Error::input(
                "the SFTP source needs `key_env` or `password_env`",
            )),
        }
    }
}

/// The kind of a key decoding error, without any key material.
fn key_error_kind(error: &russh::keys::Error) -> &'static str {
    match error {
        russh::keys::Error::KeyIsEncrypted => "it is encrypted",
        russh::keys::Error::UnsupportedKeyType { .. } => "unsupported key type",
        _ => "not a valid key, or a wrong passphrase",
    }
}

/// The known_hosts entries for host:port (OpenSSH format, hashed names included).
fn read_known_hosts(
    path: &Path,
    display: &str,
    host: &str,
    port: u16,
) -> Result<Vec<(usize, PublicKey)>, Error> {
    std::fs::metadata(path).map_err(|e| {
        Error::input(format!(
            "cannot read the known_hosts file {display} (`source.known_hosts`): {e}. Create it with `ssh-keyscan -p {port} {host}` and check the fingerprint with the server's administrator"
        ))
    })?;
    russh::keys::known_hosts::known_host_keys_path(host, port, path).map_err(|e| {
        Error::input(format!(
            "the known_hosts file {display} cannot be read: {e}"
        ))
    })
}

struct HostKeyCheck {
    known: Vec<(usize, PublicKey)>,
    verdict: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                self.refuse("the server presented a host certificate; only host keys listed in known_hosts are accepted".into());
                return Ok(false);
            }
        };
        if self
            .known
            .iter()
            .any(|(_, k)| k.key_data() == key.key_data())
        {
            return Ok(true);
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        let problem = if self.known.is_empty() {
            format!(
                "unknown host key {} {fingerprint}: the host is not in known_hosts. If the server's administrator confirms this fingerprint, add the key (`ssh-keyscan`)",
                key.algorithm()
            )
        } else {
            let lines: Vec<String> = self.known.iter().map(|(l, _)| l.to_string()).collect();
            format!(
                "HOST KEY CHANGED: the server presented {} {fingerprint}, which is not the key recorded in known_hosts (line {}). This may be an attack; do not update known_hosts until the server's administrator confirms the new key",
                key.algorithm(),
                lines.join(", ")
            )
        };
        self.refuse(problem);
        Ok(false)
    }
}

impl HostKeyCheck {
    fn refuse(&self, problem: String) {
        if let Ok(mut verdict) = self.verdict.lock() {
            *verdict = Some(problem);
        }
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// `*` (any run of characters) and `?` (one character); everything else is literal.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("employees-*.csv", "employees-2026-05-01.csv"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("e?.csv", "e1.csv"));
        assert!(!glob_match("employees-*.csv", "employees-2026.xlsx"));
        assert!(!glob_match("employees-*.csv", "old-employees-1.csv"));
        assert!(glob_match("*.csv", ".csv"));
    }
}
