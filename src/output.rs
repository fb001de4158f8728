//! The one place that decides how output looks: stdout carries data (plans, JSON, reports),
//! stderr carries logs; color only on a terminal and never with `NO_COLOR`.

use std::io::IsTerminal;

/// ANSI styling that is a no-op when color is off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paint {
    enabled: bool,
}

impl Paint {
    /// Color for stdout: a terminal, and `NO_COLOR` unset or empty.
    pub fn for_stdout() -> Paint {
        Paint {
            enabled: std::io::stdout().is_terminal() && no_color_unset(),
        }
    }

    pub fn plain() -> Paint {
        Paint { enabled: false }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    pub fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }
}

/// `NO_COLOR` (https://no-color.org): present and non-empty disables color.
pub fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Logs to stderr; `RUST_LOG` overrides the level.
pub fn init_logging(verbose: bool) {
    let default = if verbose {
        "speakap_sync=debug,info"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && no_color_unset())
        .without_time()
        .with_target(false)
        .init();
}
