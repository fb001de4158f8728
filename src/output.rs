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
    let ansi = std::io::stderr().is_terminal() && no_color_unset();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || InertLines { ansi })
        .with_ansi(ansi)
        .without_time()
        .with_target(false)
        .init();
}

/// Stderr for log events, each written whole: what an event quotes (a file name from a server,
/// an API's message, an HR value) cannot start a line of its own, say a `::` workflow command
/// in a CI log. Only the line end the formatter adds stays a line end; with color on, its
/// escape sequences stay too.
struct InertLines {
    ansi: bool,
}

impl std::io::Write for InertLines {
    fn write(&mut self, event: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(event);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = if self.ansi {
            body.split('\x1b')
                .map(crate::text::inert)
                .collect::<Vec<_>>()
                .join("\x1b")
        } else {
            crate::text::inert(body).into_owned()
        };
        std::io::stderr().write_all(format!("{line}{end}").as_bytes())?;
        Ok(event.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Progress of a long run: a bar on stderr when it is a terminal, otherwise a log line every few
/// seconds (CI logs stay readable).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    last_log: std::sync::Mutex<std::time::Instant>,
}

/// How often progress is logged when there is no terminal.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Progress {
        let bar = (total > 0 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(label);
            bar
        });
        let now = std::time::Instant::now();
        Progress {
            bar,
            label,
            total,
            done: Default::default(),
            started: now,
            last_log: std::sync::Mutex::new(now),
        }
    }

    /// A progress that shows nothing (library use, tests).
    pub fn hidden() -> Progress {
        Progress {
            bar: Some(indicatif::ProgressBar::hidden()),
            ..Progress::new("", 0)
        }
    }

    pub fn tick(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => {
                let mut last = self.last_log.lock().expect("progress lock");
                if last.elapsed() >= LOG_EVERY || done == self.total {
                    *last = std::time::Instant::now();
                    let rate = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
                    tracing::info!("{}: {done}/{} ({rate:.1}/s)", self.label, self.total);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
