//! What a plan is made from: the HR record read and resolved, the network fetched (the two at
//! once), the ledger of earlier applies; and the plan made from them.

use std::path::{Path, PathBuf};

use jiff::civil::Date;

use super::connection::Connection;
use super::today;
use crate::cli::RunArgs;
use crate::config::{self, Config, SftpSource, Source};
use crate::desired::{Resolution, resolve};
use crate::diag;
use crate::error::Error;
use crate::hr::{self, Snapshot};
use crate::plan::{self, Plan, PlanInput};
use crate::rules;
use crate::speakap::{self, Observed};
use crate::state::journal;
use crate::state::{self, Ledger};

/// Reads the HR record from the configured source, or from `--hr` (`override_path`).
pub async fn read_hr(config: &Config, override_path: Option<&Path>) -> Result<Snapshot, Error> {
    let source = &config.sync.source;
    let overridden = override_path.map(|p| (p.to_path_buf(), p.display().to_string()));
    let file = || match overridden.clone() {
        Some(overridden) => Ok(overridden),
        None => configured_file(config),
    };
    let layout = hr::Layout::typed(rules::configured_columns(&config.sync));
    match source {
        Source::Csv(csv) => {
            let (path, display) = file()?;
            let options = hr::CsvOptions {
                delimiter: csv.delimiter,
                encoding: &csv.encoding,
            };
            hr::csv::read(&path, &display, options, layout)
        }
        Source::Excel(excel) => {
            let (path, display) = file()?;
            let date_format = source.format().date_format;
            hr::excel::read(&path, &display, excel.sheet.as_deref(), date_format, layout)
        }
        Source::Sftp(sftp) => read_sftp(config, sftp, overridden, layout).await,
        Source::Afas(afas) => {
            if let Some((_, display)) = overridden {
                return Err(Error::input(format!(
                    "--hr {display}: the HR source is the AFAS connector {}; `--hr` replaces files only",
                    afas.connector
                )));
            }
            hr::afas::read(afas, layout, source.format().date_format).await
        }
    }
}

/// The configured file, inside the repository (`--hr` is the operator's and goes anywhere),
/// with the name it is shown by.
fn configured_file(config: &Config) -> Result<(PathBuf, String), Error> {
    let setting =
        config::paths::source_file(&config.sync.source).expect("a file source names its file");
    let display = if config.files.prefix.is_empty() {
        setting.value.to_string()
    } else {
        format!("{}/{}", config.files.prefix, setting.value)
    };
    Ok((config.path_inside(&setting)?, display))
}

/// Downloads the file (or takes `--hr`'s local copy instead) and reads it as CSV or Excel.
async fn read_sftp(
    config: &Config,
    sftp: &SftpSource,
    overridden: Option<(PathBuf, String)>,
    layout: hr::Layout,
) -> Result<Snapshot, Error> {
    let fetched = match overridden {
        // `--hr` replaces the download with a local copy, read the same way.
        Some((path, display)) => hr::sftp::Fetched {
            bytes: std::fs::read(&path)
                .map_err(|e| Error::input(format!("cannot read the HR file {display}: {e}")))?,
            file_name: display.clone(),
            display,
            modified: None,
        },
        None => {
            let known_hosts = config::paths::source_file(&config.sync.source)
                .expect("SFTP names its known_hosts");
            hr::sftp::fetch(sftp, &config.path_inside(&known_hosts)?).await?
        }
    };
    let mut snapshot = if fetched.is_excel(sftp.format) {
        hr::excel::parse(
            fetched.bytes,
            &fetched.display,
            sftp.sheet.as_deref(),
            config.sync.source.format().date_format,
            layout,
        )?
    } else {
        hr::csv::parse(
            &fetched.bytes,
            &fetched.display,
            hr::CsvOptions {
                delimiter: sftp.delimiter,
                encoding: &sftp.encoding,
            },
            layout,
        )?
    };
    snapshot.modified = fetched.modified;
    Ok(snapshot)
}

/// Everything a plan is computed from.
pub struct Inputs {
    pub config: Config,
    pub hr: crate::hr::SnapshotInfo,
    /// The HR records themselves (`explain` shows a person's row). They cost nothing extra: the
    /// desired users read their values from these rows.
    pub snapshot: Snapshot,
    pub resolution: Resolution,
    pub observed: Observed,
    pub ledger: Ledger,
    /// No record of earlier applies, but accounts with employee IDs: a sync ran before, and
    /// its record is missing here.
    pub unrecorded_accounts: bool,
    pub today: Date,
}

pub async fn gather(
    config: Config,
    run: &RunArgs,
    connection: &Connection,
) -> Result<Inputs, Error> {
    let today = today(run.now, &config.sync.policy.timezone.0)?;
    // The network is fetched while the HR record is read and resolved: the one mostly waits on
    // the API, the other keeps a core busy (resolve runs on a blocking thread for that).
    let started = std::time::Instant::now();
    let fetch = async {
        let observed = speakap::fetch(&connection.client).await?;
        tracing::debug!(
            "network fetched: {} accounts in {:.2} s",
            observed.users.len(),
            started.elapsed().as_secs_f64()
        );
        Ok::<_, Error>(observed)
    };
    let desired = async move {
        let snapshot = read_hr(&config, run.hr.as_deref()).await?;
        tokio::task::spawn_blocking(move || {
            let resolution = resolve(&config, &snapshot, today);
            tracing::debug!(
                "HR record read and resolved: {} records in {:.2} s",
                snapshot.records.len(),
                started.elapsed().as_secs_f64()
            );
            let hr = snapshot.info();
            (config, hr, snapshot, resolution)
        })
        .await
        .map_err(|e| Error::input(format!("resolving the HR record failed: {e}")))
    };
    let (observed, (config, hr, snapshot, resolution)) = tokio::try_join!(fetch, desired)?;
    let ledger = state::read_ledger(&config.files.repo_root, &config.sync.network)?;
    let has_record = state::has_record(&config.files.repo_root, &config.sync.network)?;
    let state_dir = state::state_dir(&config.files.repo_root)?;
    if journal::pending_networks(&state_dir).contains(&config.sync.network) {
        tracing::warn!(
            "an apply of network {} has not recorded itself yet (its journal is in {}; it is running, or it ended without its audit commit): this plan does not know what it did; `speakap-sync audit` records it once no apply runs",
            config.sync.network,
            state_dir.display()
        );
    }
    let synced_before = observed.users.iter().any(|u| u.xid.is_some());
    if !has_record && synced_before {
        tracing::warn!(
            "no record of earlier applies to network {} ({}), yet its accounts carry employee IDs: if the sync has applied before, fetch the record first: git fetch origin '{}:{}'. Until then this plan treats every account as seen for the first time (desired memberships already there become the sync's; accounts deleted by hand are not known), and apply refuses without --adopt",
            config.sync.network,
            state::STATE_REF,
            state::STATE_REF,
            state::STATE_REF
        );
    }
    Ok(Inputs {
        config,
        hr,
        snapshot,
        resolution,
        observed,
        ledger,
        unrecorded_accounts: !has_record && synced_before,
        today,
    })
}

pub fn make_plan(inputs: &Inputs) -> Result<Plan, Error> {
    let input = PlanInput {
        config: &inputs.config,
        resolution: &inputs.resolution,
        observed: &inputs.observed,
        ledger: &inputs.ledger,
        hr: inputs.hr.clone(),
        today: inputs.today,
    };
    plan::plan(&input).map_err(|diagnostics| {
        eprint!(
            "{}",
            diag::render_text(&diagnostics, &inputs.config.files.files)
        );
        Error::Config(diagnostics)
    })
}

/// Everything read, and the plan made from it (for `plan` and `explain`).
pub async fn planned(config: Config, run: &RunArgs) -> Result<(Inputs, Plan), Error> {
    let connection = Connection::open(&config).await?;
    let result = gather(config, run, &connection).await;
    connection.close().await?;
    let inputs = result?;
    let started = std::time::Instant::now();
    let plan = make_plan(&inputs)?;
    tracing::debug!("planned in {:.2} s", started.elapsed().as_secs_f64());
    Ok((inputs, plan))
}
