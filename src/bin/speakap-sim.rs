//! `speakap-sim serve`: the Speakap API simulator as a standalone server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use speakap_sync::sim::{self, Seed, SimConfig};

#[derive(Parser)]
#[command(
    name = "speakap-sim",
    version,
    about = "A local Speakap API simulator for tests and trials"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the simulated API until interrupted. The first stdout line is `listening on URL`.
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// The network EID to simulate.
        #[arg(long)]
        network: String,
        /// The bearer token clients must send.
        #[arg(long)]
        token: String,
        /// Keep the network in this JSON file (loaded from it when it exists).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Start from this seed file (groups and users) when there is no state file yet.
        #[arg(long)]
        seed: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() {
    let Cli {
        command:
            Command::Serve {
                addr,
                network,
                token,
                state,
                seed,
            },
    } = Cli::parse();
    if let Err(message) = serve(addr, network, token, state, seed).await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn serve(
    addr: SocketAddr,
    network: String,
    token: String,
    state: Option<PathBuf>,
    seed: Option<PathBuf>,
) -> Result<(), String> {
    let seed = match seed {
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(
                serde_json::from_str::<Seed>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let running = sim::start(
        addr,
        SimConfig {
            network,
            token,
            state_file: state,
            seed,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("listening on {}", running.url);
    shutdown_signal().await;
    running
        .stop()
        .await
        .map_err(|e| format!("cannot save state: {e}"))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
