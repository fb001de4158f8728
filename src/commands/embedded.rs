//! `speakap.url: embedded`: the simulator started in this process on a loopback port, its
//! network read from the seed file and kept in the state file between runs. Only in builds with
//! the `simulator` feature; nothing else in `commands` names the simulator.

use crate::config::{self, Config, EmbeddedSimulator};
use crate::error::Error;
use crate::sim::{self, RunningSim, Seed, SimConfig};

/// The simulator running for this process, with the URL and token to reach it.
pub struct Embedded {
    pub url: String,
    pub token: String,
    running: RunningSim,
}

/// Starts the simulator `settings` describe, on 127.0.0.1 with a free port.
pub async fn start(config: &Config, settings: &EmbeddedSimulator) -> Result<Embedded, Error> {
    let [seed_file, state_file] = config::paths::simulator_files(settings);
    let seed_path = config.path_inside(&seed_file)?;
    let state_path = config.path_inside(&state_file)?;
    let seed_text = std::fs::read_to_string(&seed_path)
        .map_err(|e| Error::input(format!("simulator seed {}: {e}", seed_path.display())))?;
    let seed: Seed = serde_json::from_str(&seed_text)
        .map_err(|e| Error::input(format!("simulator seed {}: {e}", seed_path.display())))?;
    // A fresh token per run: the simulator only listens on loopback for this process.
    let token = crate::digest::sha256_hex(format!(
        "{:?}{}",
        std::time::SystemTime::now(),
        std::process::id()
    ));
    let running = sim::start(
        ([127, 0, 0, 1], 0).into(),
        SimConfig {
            network: config.sync.network.clone(),
            token: token.clone(),
            state_file: Some(state_path),
            seed: Some(seed),
            faults: Default::default(),
            fault_seed: 0,
            max_page_size: sim::DEFAULT_MAX_PAGE_SIZE,
        },
    )
    .await
    .map_err(|e| Error::input(e.to_string()))?;
    tracing::info!(
        "using the embedded Speakap simulator at {} (state: {})",
        running.url,
        settings.state
    );
    if running.seed_changed {
        tracing::warn!(
            "the simulator seed {} changed since its state {} was made from it: the simulated network does not show the change. Start it again from the seed with `speakap-sync simulator reset --repo {}`",
            settings.seed,
            settings.state,
            config.files.config_dir.display()
        );
    }
    Ok(Embedded {
        url: running.url.clone(),
        token,
        running,
    })
}

impl Embedded {
    /// Stops the simulator, writing its network to the state file.
    pub async fn stop(self) -> Result<(), Error> {
        self.running
            .stop()
            .await
            .map_err(|e| Error::input(format!("embedded simulator: cannot save its state: {e}")))
    }
}
