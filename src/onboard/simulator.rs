//! `simulator reset`: the embedded simulator starts again from its seed. Its kept state is
//! removed (found through `speakap.embedded.state`, inside the repository only); the audit trail
//! is left alone, but a record of applies to the simulated network is pointed out, since the
//! next plan would read what it lists as accounts deleted by hand.

use crate::cli::SimulatorResetArgs;
use crate::config;
use crate::diag;
use crate::error::Error;
use crate::state;

pub fn reset(args: &SimulatorResetArgs) -> Result<i32, Error> {
    let files = config::read_config_files(&args.repo, "HEAD", true)?;
    let sources = files.files.clone();
    let config = config::load(files).map_err(|diagnostics| {
        eprint!("{}", diag::render_text(&diagnostics, &sources));
        Error::Config(diagnostics)
    })?;
    let speakap = &config.sync.speakap;
    let Some(embedded) = speakap
        .embedded
        .as_ref()
        .filter(|_| speakap.url == "embedded")
    else {
        return Err(Error::input(
            "this config does not use the embedded simulator (`speakap.url: embedded`): there is nothing to reset",
        ));
    };
    let [_, state_file] = config::paths::simulator_files(embedded);
    let path = config.path_inside(&state_file)?;
    match std::fs::remove_file(&path) {
        Ok(()) => println!(
            "removed {}: the next plan starts the simulated network from {}",
            embedded.state, embedded.seed
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!(
            "{} does not exist: the simulated network already starts from {}",
            embedded.state, embedded.seed
        ),
        Err(e) => {
            return Err(Error::input(format!(
                "cannot remove {}: {e}",
                path.display()
            )));
        }
    }
    if state::has_record(&config.files.repo_root, &config.sync.network)? {
        tracing::warn!(
            "{} records applies to network {}: against the fresh simulated network the next plan reads the accounts they made as deleted by hand. If that ref holds nothing but rehearsals, start it over too: git update-ref -d {}",
            state::STATE_REF,
            config.sync.network,
            state::STATE_REF
        );
    }
    Ok(0)
}
