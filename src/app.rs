//! Wiring: configuration → poller → snapshot → HTTP, run until a signal.
//!
//! [`run`] is what `main` calls for both the exporter and the demo. It binds
//! the listener, starts the publisher and the poller, serves HTTP, reloads on
//! SIGHUP (and `POST /-/reload` when enabled), and stops on SIGTERM or SIGINT.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::AuthContext;
use crate::config::{self, Config};
use crate::poller::Poller;
use crate::selfmetrics::{SelfMetrics, VERSION};
use crate::server::{self, Endpoints};
use crate::snapshot::Snapshot;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file, read at start and on every reload.
    File(PathBuf),
    /// A configuration built in memory (the demo); reloads keep it.
    Fixed(Box<Config>),
}

impl ConfigSource {
    fn load(&self) -> Result<Config, config::ConfigError> {
        match self {
            ConfigSource::File(path) => config::load_file(path),
            ConfigSource::Fixed(c) => Ok((**c).clone()),
        }
    }
}

/// Options of the HTTP side.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The listen address.
    pub listen_address: String,
    /// The metrics path.
    pub telemetry_path: String,
    /// Whether `POST /-/reload` is served.
    pub enable_lifecycle: bool,
    /// The exporter-toolkit web configuration file (TLS, basic auth, headers).
    pub web_config_file: Option<PathBuf>,
}

/// Why the exporter could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration was refused at start.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The web configuration file was refused at start.
    #[error("{0}")]
    WebConfig(#[from] crate::web::WebConfigError),
    /// The HTTP client could not be built (bad CA file, TLS setup).
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] crate::client_pool::PoolError),
    /// `simulator` could not write its configuration or secret files.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the exporter until SIGTERM or SIGINT, or until `stop` fires.
pub async fn run(
    source: ConfigSource,
    opts: ServeOptions,
    stop: CancellationToken,
) -> Result<(), RunError> {
    let config = source.load()?;
    let web = opts
        .web_config_file
        .as_deref()
        .map(crate::web::WebState::load)
        .transpose()?
        .map(Arc::new);
    let metrics = Arc::new(SelfMetrics::new());
    metrics.record_reload(true);
    let snapshot = Snapshot::new(Duration::from_secs(1));
    let cancel = stop.child_token();

    let listener = server::bind(&opts.listen_address)
        .await
        .map_err(|source| RunError::Listen {
            address: opts.listen_address.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();

    let auth = AuthContext::new(metrics.clone());
    let mut poller = Poller::new(snapshot.clone(), auth, cancel.clone());
    poller.apply(&config)?;
    tokio::spawn(snapshot.clone().run_publisher(cancel.clone()));

    let (reload_tx, reload_rx) = mpsc::channel(4);
    let endpoints = Arc::new(Endpoints {
        snapshot: snapshot.clone(),
        metrics: metrics.clone(),
        telemetry_path: opts.telemetry_path.clone(),
        reload: opts.enable_lifecycle.then(|| reload_tx.clone()),
    });
    tracing::info!(version = VERSION, address = %local, targets = config.targets.len(), "dbss-exporter started");
    if let Some(web) = &web {
        web.log_summary(&local);
    }
    let server =
        server::spawn_dedicated(listener, endpoints, web, cancel.clone()).map_err(|source| {
            RunError::Listen {
                address: local.clone(),
                source,
            }
        })?;

    control_loop(
        &source,
        &mut poller,
        &metrics,
        reload_tx,
        reload_rx,
        &cancel,
    )
    .await;

    tracing::info!("shutting down");
    cancel.cancel();
    poller.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_millis(1500), server).await;
    Ok(())
}

/// Reloads on request and returns when it is time to stop.
async fn control_loop(
    source: &ConfigSource,
    poller: &mut Poller,
    metrics: &SelfMetrics,
    reload_tx: mpsc::Sender<server::ReloadRequest>,
    mut reload_rx: mpsc::Receiver<server::ReloadRequest>,
    cancel: &CancellationToken,
) {
    spawn_signal_handlers(reload_tx, cancel.clone());
    loop {
        let request = tokio::select! {
            _ = cancel.cancelled() => return,
            r = reload_rx.recv() => r,
        };
        let Some(request) = request else { return };
        let outcome = reload(source, poller);
        metrics.record_reload(outcome.is_ok());
        if let Some(reply) = request {
            let _ = reply.send(outcome);
        }
    }
}

fn reload(source: &ConfigSource, poller: &mut Poller) -> Result<(), String> {
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e.to_string().replace('\n', "; "), "reload refused, the previous configuration keeps running");
            return Err(e.to_string());
        }
    };
    if let Err(e) = poller.apply(&config) {
        tracing::error!(error = %e, "reload refused, the previous configuration keeps running");
        return Err(e.to_string());
    }
    tracing::info!(targets = config.targets.len(), "configuration reloaded");
    Ok(())
}

#[cfg(unix)]
fn spawn_signal_handlers(
    reload_tx: mpsc::Sender<server::ReloadRequest>,
    cancel: CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!(signal = "SIGTERM", "stop requested"); break }
                _ = int.recv() => { tracing::info!(signal = "SIGINT", "stop requested"); break }
                _ = hup.recv() => {
                    tracing::info!(signal = "SIGHUP", "reload requested");
                    let _ = reload_tx.send(None).await;
                }
                _ = cancel.cancelled() => return,
            }
        }
        cancel.cancel();
    });
}

#[cfg(not(unix))]
fn spawn_signal_handlers(
    _reload_tx: mpsc::Sender<server::ReloadRequest>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        cancel.cancel();
    });
}
