//! `dbss-exporter simulator`: the embedded simulator and its demo fleet on
//! their own, with a configuration file that points an exporter at them.
//!
//! With the simulator in a process of its own, the exporter runs from a
//! configuration file exactly as in production: it can be measured alone,
//! reloaded, put behind a web configuration, or scraped by a real
//! Prometheus, while the simulator plays the cloud.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{value, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use crate::app::RunError;
use crate::cli::SimulatorArgs;
use crate::config::{Config, CredentialSpec};
use crate::secret::SecretSource;

/// The name of the configuration file written into the directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Starts the simulator, writes the configuration, and serves until SIGTERM
/// or SIGINT.
pub async fn run(args: &SimulatorArgs) -> Result<(), RunError> {
    let (sim, config) = crate::demo::start_simulator(&args.demo, &args.listen_address).await?;
    let path = write_config(&config, &args.config_dir)?;
    tracing::info!(simulator = %sim.url(), config = %path.display(), targets = config.targets.len(), "configuration written; start the exporter with --config.file on it");
    wait_for_stop().await;
    tracing::info!("simulator stopped");
    drop(sim);
    Ok(())
}

/// Writes `config` as `DIR/config.toml`, each secret it holds in a file of
/// its own beside it (readable by the owner only), and returns the path.
/// The file appears whole: it is written aside and renamed into place.
pub fn write_config(config: &Config, dir: &Path) -> Result<PathBuf, RunError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(failed(dir))?;

    let mut doc = DocumentMut::new();
    let mut poll = Table::new();
    let interval = humantime::format_duration(config.poll.interval).to_string();
    poll.insert("interval", value(interval));
    poll.insert("concurrency", value(config.poll.concurrency as i64));
    doc.insert("poll", Item::Table(poll));

    let mut credentials = Table::new();
    credentials.set_implicit(true);
    for (name, spec) in &config.credentials {
        credentials.insert(name, Item::Table(credential_table(name, spec, dir)?));
    }
    doc.insert("credentials", Item::Table(credentials));

    let mut targets = ArrayOfTables::new();
    for t in &config.targets {
        let mut table = Table::new();
        table.insert("project_id", value(&t.project_id));
        table.insert("region", value(&t.region));
        table.insert("endpoint", value(&t.endpoint));
        if let Some(c) = &t.credentials {
            table.insert("credentials", value(c));
        }
        if !t.labels.is_empty() {
            let mut labels = InlineTable::new();
            for (k, v) in &t.labels {
                labels.insert(k, v.as_str().into());
            }
            table.insert("labels", value(labels));
        }
        targets.push(table);
    }
    doc.insert("targets", Item::ArrayOfTables(targets));

    let path = dir.join(CONFIG_FILE);
    let aside = dir.join(format!(".{CONFIG_FILE}.new"));
    fs::write(&aside, doc.to_string()).map_err(failed(&aside))?;
    fs::rename(&aside, &path).map_err(failed(&path))?;
    Ok(path)
}

/// One `[credentials.NAME]` table; secrets held in memory go to files
/// named `NAME-STEM` in `dir`.
fn credential_table(name: &str, spec: &CredentialSpec, dir: &Path) -> Result<Table, RunError> {
    let mut t = Table::new();
    let secret = |t: &mut Table, stem: &str, source: &SecretSource| {
        put_secret(t, stem, source, &dir.join(format!("{name}-{stem}")))
    };
    match spec {
        CredentialSpec::Token { token } => {
            t.insert("type", value("token"));
            secret(&mut t, "token", token)?;
        }
        CredentialSpec::AkSk {
            ak,
            sk,
            security_token,
        } => {
            t.insert("type", value("aksk"));
            t.insert("ak", value(ak));
            secret(&mut t, "sk", sk)?;
            if let Some(st) = security_token {
                secret(&mut t, "security_token", st)?;
            }
        }
        CredentialSpec::Password {
            domain,
            user,
            password,
            iam_endpoint,
        } => {
            t.insert("type", value("password"));
            t.insert("domain", value(domain));
            t.insert("user", value(user));
            secret(&mut t, "password", password)?;
            if let Some(e) = iam_endpoint {
                t.insert("iam_endpoint", value(e));
            }
        }
        CredentialSpec::EcsMetadata { metadata_endpoint } => {
            t.insert("type", value("ecs_metadata"));
            t.insert("metadata_endpoint", value(metadata_endpoint));
        }
        CredentialSpec::SdkEnv => {
            t.insert("type", value("sdk_env"));
        }
    }
    Ok(t)
}

/// Sets `STEM_env`, or `STEM_file`; a secret held in memory is written to
/// `file` first, readable by the owner only.
fn put_secret(
    table: &mut Table,
    stem: &str,
    source: &SecretSource,
    file: &Path,
) -> Result<(), RunError> {
    let path = match source {
        SecretSource::Env(name) => {
            table.insert(&format!("{stem}_env"), value(name));
            return Ok(());
        }
        SecretSource::File(path) => path.clone(),
        SecretSource::Value(secret) => {
            write_private(file, secret.expose().as_bytes()).map_err(|source| RunError::Write {
                path: file.to_path_buf(),
                source,
            })?;
            file.to_path_buf()
        }
    };
    table.insert(&format!("{stem}_file"), value(path.display().to_string()));
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600, whatever mode it had before.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        options.open(path)?.write_all(bytes)
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::DemoArgs;
    use crate::secret::Secret;
    use crate::sim::Fleet;

    fn demo_args() -> DemoArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            demo: DemoArgs,
        }
        Wrap::parse_from(["test", "--demo.projects=3", "--demo.poll-interval=20s"]).demo
    }

    /// The written file loads back into the same targets and poll settings,
    /// and the token is only in its private file.
    #[test]
    fn written_config_loads_back_the_same() {
        let args = demo_args();
        let fleet = Fleet::new(3, 2);
        let token = "not-a-real-token-0123456789";
        let config = crate::demo::demo_config(
            &args,
            &fleet,
            "http://127.0.0.1:4321",
            Secret::new(token.to_string()),
        );
        let dir = tempfile::tempdir().unwrap();

        let path = write_config(&config, dir.path()).unwrap();
        let loaded = crate::config::load_file(&path).unwrap();

        assert_eq!(loaded.targets, config.targets);
        assert_eq!(loaded.poll.interval, config.poll.interval);
        assert_eq!(loaded.poll.concurrency, config.poll.concurrency);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(token), "{text}");
        let token_file = dir.path().join("demo-token");
        assert_eq!(fs::read_to_string(&token_file).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&token_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
