//! The command line, in the dotted style of the Prometheus exporters.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::{LogFormat, LogLevel};

/// The default listen address: the 9100-9999 range that the Prometheus
/// exporters share is fully allocated, so this port sits outside it.
pub const DEFAULT_LISTEN: &str = ":10931";

/// Prometheus exporter for the upgrade state of Huawei Cloud DBSS audit instances.
#[derive(Debug, Parser)]
#[command(name = "dbss-exporter", version, long_version = LONG_VERSION, about, long_about = None)]
pub struct Cli {
    /// Path of the TOML configuration file.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "/etc/dbss-exporter/config.toml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Validate the configuration file, print every problem, and exit.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Options of the HTTP server and logging.
    #[command(flatten)]
    pub web: WebArgs,

    /// A subcommand; without one the exporter runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by the exporter and the demo.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Address to serve on; ":PORT" means every interface.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN, global = true)]
    pub listen_address: String,

    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics",
        value_parser = parse_telemetry_path,
        global = true
    )]
    pub telemetry_path: String,

    /// Exporter-toolkit web configuration file (TLS, basic auth, headers).
    #[arg(long = "web.config.file", value_name = "PATH", global = true)]
    pub web_config_file: Option<PathBuf>,

    /// Enable POST /-/reload.
    #[arg(long = "web.enable-lifecycle", global = true)]
    pub enable_lifecycle: bool,

    /// Only log messages at this level or above.
    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    pub log_level: LogLevel,

    /// The format of log lines.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter against the embedded DBSS API simulator and a demo fleet.
    Demo(DemoArgs),
    /// Run only the simulator with a demo fleet, and write a configuration
    /// file (and its secret files) that points the exporter at it.
    Simulator(SimulatorArgs),
}

/// Options of `simulator`.
#[derive(Debug, Clone, Args)]
pub struct SimulatorArgs {
    /// The fleet, its latency and faults, and the poll settings and
    /// credentials of the configuration written.
    #[command(flatten)]
    pub demo: DemoArgs,

    /// Address the simulator listens on; port 0 picks a free one.
    #[arg(
        long = "simulator.listen-address",
        value_name = "ADDR",
        default_value = "127.0.0.1:0"
    )]
    pub listen_address: String,

    /// Directory to write `config.toml` and its secret files into (created
    /// when missing, files readable by the owner only).
    #[arg(long = "simulator.config-dir", value_name = "DIR")]
    pub config_dir: PathBuf,
}

/// Options of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How many projects the demo fleet has (alternating between two regions).
    #[arg(long = "demo.projects", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub projects: u32,

    /// How many audit instances each demo project has.
    #[arg(long = "demo.instances", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub instances: u32,

    /// How long the simulator waits before each answer, as a real API would.
    #[arg(long = "demo.latency", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: std::time::Duration,

    /// How often the demo polls each project.
    #[arg(long = "demo.poll-interval", default_value = "15s", value_parser = parse_poll_interval)]
    pub poll_interval: std::time::Duration,

    /// How many demo projects are polled at once.
    #[arg(long = "demo.concurrency", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// Make some projects fail now and then (throttling, errors, slow answers).
    #[arg(long = "demo.faults")]
    pub faults: bool,

    /// How the demo signs in to its simulator; each kind makes up its own
    /// secrets, so none needs to be set.
    #[arg(long = "demo.credentials", value_enum, default_value = "token")]
    pub credentials: DemoCredentials,
}

/// The credential types `demo` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoCredentials {
    /// A ready token in `X-Auth-Token`.
    Token,
    /// Requests signed with an access key pair (SDK-HMAC-SHA256).
    Aksk,
    /// Project-scoped tokens from the simulator's IAM.
    Password,
    /// Temporary keys from the simulator's metadata service.
    EcsMetadata,
}

/// What `--version` prints: the version, the commit it was built from and
/// the compiler, as the Prometheus exporters do.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("DBSS_EXPORTER_REVISION"),
    ", rustc: ",
    env!("DBSS_EXPORTER_RUSTC"),
    ")"
);

/// The paths the exporter serves itself, which the metrics cannot take.
const RESERVED_PATHS: [&str; 3] = ["/-/healthy", "/-/ready", "/-/reload"];

/// A telemetry path: absolute, a plain path (no query, fragment or
/// whitespace), and not one of the exporter's own endpoints.
fn parse_telemetry_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err("must start with '/'".into());
    }
    if text.contains(['?', '#']) || text.chars().any(char::is_whitespace) {
        return Err("must be a plain path, without '?', '#' or spaces".into());
    }
    if RESERVED_PATHS.contains(&text) {
        return Err(format!("{text} is served by the exporter itself"));
    }
    Ok(text.to_owned())
}

/// A poll interval of at least a second, as the configuration file requires.
fn parse_poll_interval(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}
