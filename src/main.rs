use clap::Parser;

use speakap_sync::cli::SimulatorCommand;
use speakap_sync::cli::{Cli, Command};
use speakap_sync::{commands, onboard, output};

fn main() {
    // Output piped into `head` and the like: end quietly when the reader goes away, as other
    // command-line tools do, instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // clap exits 2 on a usage error, which `plan --detailed-exitcode` uses for "has changes":
    // a mistyped option would read as drift. Usage errors exit 1 like every other error.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 1 } else { 0 })
    });
    output::init_logging(cli.verbose);
    let result = match &cli.command {
        Command::Validate(args) => commands::validate(args),
        Command::Schema(args) => commands::schema(args),
        Command::Audit(args) => commands::audit(args),
        Command::Plan(args) => runtime().block_on(commands::plan(args)),
        Command::Apply(args) => runtime().block_on(commands::apply(args)),
        Command::Explain(args) => runtime().block_on(commands::explain(args)),
        Command::Init(args) => runtime().block_on(onboard::init(args)),
        Command::Dump(args) => runtime().block_on(onboard::dump(args)),
        Command::Doctor(args) => runtime().block_on(onboard::doctor(args)),
        Command::Simulator(SimulatorCommand::Reset(args)) => onboard::simulator::reset(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            // An error quotes values (an API's message, a file name): one line whatever they hold.
            eprintln!("error: {}", speakap_sync::text::inert(&error.to_string()));
            error.exit_code()
        }
    };
    std::process::exit(code);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
