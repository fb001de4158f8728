//! `speakap-sim serve`: the Speakap API simulator as a standalone server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use speakap_sync::sim::{self, Faults, Seed, SimConfig};

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
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
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
    /// Milliseconds added to every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share (0–1) of requests answered 502/503, half of them after taking effect.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Requests per second above which requests get 429 with Retry-After.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Share (0–1) of requests answered 429 (Retry-After: 1) whatever the rate.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Share (0–1) of connections dropped without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Seed for the fault dice, so a faulty run can be repeated.
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// The most items a listing page holds, whatever `limit` asks for.
    #[arg(long, default_value_t = sim::DEFAULT_MAX_PAGE_SIZE)]
    max_page_size: usize,
    /// Do not say it is a simulator (no `/_sim/identity`): speakap-sync then treats it as a
    /// real network, for testing the safeguards kept for those.
    #[arg(long)]
    as_real_network: bool,
}

#[tokio::main]
async fn main() {
    let Cli {
        command: Command::Serve(args),
    } = Cli::parse();
    if let Err(message) = serve(args).await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let seed = match &args.seed {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(
                serde_json::from_str::<Seed>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let faults = Faults {
        latency_ms: args.latency_ms,
        error_rate: args.fail_rate,
        rate_limit: args.rate_limit,
        throttle_rate: args.throttle_rate,
        drop_rate: args.drop_rate,
        as_real_network: args.as_real_network,
        ..Faults::default()
    };
    let config = SimConfig {
        network: args.network,
        token: args.token,
        state_file: args.state,
        seed,
        faults,
        fault_seed: args.fault_seed,
        max_page_size: args.max_page_size,
    };
    let running = sim::start(args.addr, config)
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
