//! Log setup: `--log.level` and `--log.format` (logfmt or JSON), to stderr.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
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
    /// The filter for this level. At debug the HTTP and TLS libraries stay at
    /// info: their debug lines (one per connection, per frame) would drown
    /// the exporter's own, and only `trace` asks for everything.
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug,hyper=info,hyper_util=info,reqwest=info,rustls=info,h2=info",
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
            // `{"level":..,"message":..,"project_id":..}` rather than the
            // fields nested under "fields": what log shippers index.
            .flatten_event(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// At debug the exporter's own debug lines pass and the HTTP
    /// libraries' do not; at trace both pass; at warn neither passes.
    #[test]
    fn debug_holds_the_http_libraries_at_info() {
        let enabled = |level: LogLevel| {
            let subscriber = tracing_subscriber::registry().with(EnvFilter::new(level.directive()));
            tracing::subscriber::with_default(subscriber, || {
                [
                    tracing::enabled!(target: "dbss_exporter::poller", tracing::Level::DEBUG),
                    tracing::enabled!(target: "hyper_util::client", tracing::Level::DEBUG),
                    tracing::enabled!(target: "rustls::client", tracing::Level::DEBUG),
                    tracing::enabled!(target: "reqwest::connect", tracing::Level::INFO),
                ]
            })
        };
        assert_eq!(enabled(LogLevel::Debug), [true, false, false, true]);
        assert_eq!(enabled(LogLevel::Trace), [true, true, true, true]);
        assert_eq!(enabled(LogLevel::Warn), [false, false, false, false]);
    }
}
