//! The `dbss-exporter` binary: parse flags, start logging, run, and turn the
//! outcome into an exit code. Everything else lives in the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use dbss_exporter::app::{self, ConfigSource, RunError, ServeOptions};
use dbss_exporter::cli::{Cli, Command};
use dbss_exporter::logging::LogFormat;
use dbss_exporter::{config, demo, logging, standalone};

/// Exit code for a configuration that was refused (sysexits' EX_CONFIG),
/// distinct from 1 for a failure while running.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.web.log_level, cli.web.log_format);

    if cli.config_check {
        return check(&cli);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbss-exporter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = ServeOptions {
        listen_address: cli.web.listen_address.clone(),
        telemetry_path: cli.web.telemetry_path.clone(),
        enable_lifecycle: cli.web.enable_lifecycle,
        web_config_file: cli.web.web_config_file.clone(),
    };
    let outcome = runtime.block_on(async {
        match &cli.command {
            Some(Command::Demo(args)) => demo::run(args, opts).await,
            Some(Command::Simulator(args)) => standalone::run(args).await,
            None => {
                app::run(
                    ConfigSource::File(cli.config_file.clone()),
                    opts,
                    Default::default(),
                )
                .await
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // A CA file that went bad after the configuration was checked is
        // refused the same way.
        Err(e @ (RunError::Config(_) | RunError::WebConfig(_) | RunError::Client(_))) => {
            refused(&e, cli.web.log_format);
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            // One line, in the log format the operator chose.
            tracing::error!(error = %e, "dbss-exporter stopped");
            ExitCode::FAILURE
        }
    }
}

/// A refused configuration at start: one `file:line: key: reason` line per
/// problem, as `--config.check` prints them; under `--log.format=json`, one
/// JSON log record holding them, so that log collectors can read it.
fn refused(e: &RunError, format: LogFormat) {
    match format {
        LogFormat::Json => tracing::error!(error = %e, "configuration refused"),
        LogFormat::Logfmt => eprintln!("{e}"),
    }
}

/// `--config.check`: every problem on stderr, or a one-line summary.
fn check(cli: &Cli) -> ExitCode {
    match config::load_file(&cli.config_file) {
        Ok(c) => {
            println!(
                "{}: OK ({} targets, {} credentials)",
                cli.config_file.display(),
                c.targets.len(),
                c.credentials.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
