//! `dbss-exporter demo`: the simulator with a demo fleet on a loopback port,
//! and the exporter polling it, so that anyone can see real metrics without
//! a cloud account or any secret.

use std::collections::BTreeMap;

use rand::distributions::{Alphanumeric, DistString};

use crate::app::{self, ConfigSource, RunError, ServeOptions};
use crate::cli::{DemoArgs, DemoCredentials};
use crate::config::{Config, CredentialSpec, PollSettings, Target};
use crate::secret::{Secret, SecretSource};
use crate::sim::{FaultMix, Fleet, Simulator};

/// Starts the simulator and runs the exporter against it until stopped.
pub async fn run(args: &DemoArgs, opts: ServeOptions) -> Result<(), RunError> {
    let (sim, config) = start_simulator(args, "127.0.0.1:0").await?;
    let result = app::run(
        ConfigSource::Fixed(Box::new(config)),
        opts,
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    drop(sim);
    result
}

/// Starts the simulator on `addr` with the fleet, latency, faults and
/// credentials that `args` ask for, and returns it with the exporter
/// configuration that polls it.
pub async fn start_simulator(args: &DemoArgs, addr: &str) -> Result<(Simulator, Config), RunError> {
    let sim = Simulator::start_on(addr)
        .await
        .map_err(|source| RunError::Listen {
            address: addr.into(),
            source,
        })?;
    let fleet = Fleet::new(args.projects as usize, args.instances as usize);
    let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    sim.add_token(&token);
    sim.set_latency(args.latency);
    let mut config = demo_config(args, &fleet, &sim.url(), Secret::new(token));
    if let Some(spec) = demo_credentials(args.credentials, &sim) {
        config.credentials.insert("demo".into(), spec);
    }
    sim.set_fleet(fleet);
    if args.faults {
        sim.set_fault_mix(Some(FaultMix::gentle()));
    }
    tracing::info!(simulator = %sim.url(), projects = args.projects, instances_per_project = args.instances, faults = args.faults, "demo simulator started");
    Ok((sim, config))
}

/// Credentials of `kind` that the simulator accepts, made up on the spot;
/// `None` for the token that [`demo_config`] already holds.
fn demo_credentials(kind: DemoCredentials, sim: &Simulator) -> Option<CredentialSpec> {
    let made_up = |n| Alphanumeric.sample_string(&mut rand::thread_rng(), n);
    let spec = match kind {
        DemoCredentials::Token => return None,
        DemoCredentials::Aksk => {
            let (ak, sk) = (format!("DEMO{}", made_up(16).to_uppercase()), made_up(40));
            sim.add_access_key(&ak, &sk);
            let sk = SecretSource::Value(Secret::new(sk));
            CredentialSpec::AkSk {
                ak,
                sk,
                security_token: None,
            }
        }
        DemoCredentials::Password => {
            let password = made_up(24);
            sim.add_iam_user("demo-account", "demo-user", &password);
            CredentialSpec::Password {
                domain: "demo-account".into(),
                user: "demo-user".into(),
                password: SecretSource::Value(Secret::new(password)),
                iam_endpoint: Some(sim.url()),
            }
        }
        DemoCredentials::EcsMetadata => {
            sim.serve_metadata_keys(std::time::Duration::from_secs(6 * 3600));
            CredentialSpec::EcsMetadata {
                metadata_endpoint: sim.url(),
            }
        }
    };
    Some(spec)
}

/// The exporter configuration that polls every project of `fleet` at `url`.
pub fn demo_config(args: &DemoArgs, fleet: &Fleet, url: &str, token: Secret) -> Config {
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "demo".to_string(),
        CredentialSpec::Token {
            token: SecretSource::Value(token),
        },
    );
    let targets = fleet
        .projects()
        .iter()
        .enumerate()
        .map(|(i, p)| Target {
            project_id: p.project_id.clone(),
            region: p.region.clone(),
            endpoint: url.to_string(),
            credentials: Some("demo".into()),
            labels: vec![(
                "env".into(),
                if i % 4 == 3 { "staging" } else { "prod" }.into(),
            )],
            ca_file: None,
            insecure_skip_verify: false,
        })
        .collect();
    let interval = args.poll_interval;
    let poll = PollSettings {
        interval,
        deadline: PollSettings::default().deadline.min(interval.mul_f64(0.8)),
        timeout: PollSettings::default().timeout.min(interval.mul_f64(0.8)),
        concurrency: args.concurrency as usize,
        // The simulator is on loopback: a proxy set for the real cloud
        // must not carry the demo's requests.
        proxy_from_env: false,
        ..PollSettings::default()
    };
    Config {
        poll,
        credentials,
        targets,
    }
}
