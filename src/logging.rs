//! Log setup: `--log.level` and `--log.format` (logfmt or JSON), to stderr.

use tracing_subscriber::{fmt, EnvFilter};

/// The log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, as the Go exporters write.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Only what stops the program.
    Error,
    /// Failed polls and other problems.
    Warn,
    /// Lifecycle: start, reload, shutdown.
    Info,
    /// One line per poll.
    Debug,
    /// Everything, including the HTTP libraries.
    Trace,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Installs the global subscriber; a second call does nothing.
pub fn init(level: LogLevel, format: LogFormat) {
    let filter = EnvFilter::new(level.directive());
    // An error here means a subscriber is already installed: keep it.
    let _ = match format {
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_current_span(false)
            .try_init()
            .map_err(|e| e.to_string()),
        LogFormat::Logfmt => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init()
            .map_err(|e| e.to_string()),
    };
}

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
