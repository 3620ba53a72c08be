//! The exporter's own metrics, kept with the `prometheus` crate: build
//! information, scrapes served, sign-in calls, configuration reloads and the
//! process metrics. They are few and some change on every scrape, so they
//! are encoded fresh each time and appended behind the cached page.

use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The registry of self-metrics and handles to each of them.
pub struct SelfMetrics {
    registry: Registry,
    /// `dbss_exporter_scrapes_total`
    pub scrapes: IntCounter,
    /// `dbss_auth_requests_total{kind,outcome}`
    pub auth_requests: IntCounterVec,
    /// `dbss_exporter_config_last_reload_successful`
    pub reload_ok: IntGauge,
    /// `dbss_exporter_config_last_reload_success_timestamp_seconds`
    pub reload_time: Gauge,
}

/// The exporter's version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl SelfMetrics {
    /// Registers every self-metric; the process metrics only on Linux.
    pub fn new() -> Self {
        let registry = Registry::new();
        let build = IntGauge::with_opts(
            Opts::new(
                "dbss_exporter_build_info",
                "Build information of the exporter; always 1.",
            )
            .const_label("version", VERSION)
            .const_label(
                "revision",
                option_env!("DBSS_EXPORTER_REVISION").unwrap_or("unknown"),
            )
            .const_label(
                "rustc_version",
                option_env!("DBSS_EXPORTER_RUSTC").unwrap_or("unknown"),
            ),
        )
        .expect("static metric options are valid");
        build.set(1);
        let scrapes = IntCounter::new(
            "dbss_exporter_scrapes_total",
            "Requests for the metrics page served, this one included.",
        )
        .expect("static metric options are valid");
        let auth_requests = IntCounterVec::new(
            Opts::new(
                "dbss_auth_requests_total",
                "Calls to IAM and the metadata service, by kind and outcome.",
            ),
            &["kind", "outcome"],
        )
        .expect("static metric options are valid");
        // Every series exists from the start, so that `rate()` and
        // `increase()` see the first failure rather than a series appearing.
        for kind in ["iam", "metadata"] {
            for outcome in ["success", "failure"] {
                auth_requests.with_label_values(&[kind, outcome]);
            }
        }
        let reload_ok = IntGauge::new(
            "dbss_exporter_config_last_reload_successful",
            "Whether the last configuration load succeeded.",
        )
        .expect("static metric options are valid");
        let reload_time = Gauge::new(
            "dbss_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )
        .expect("static metric options are valid");

        for c in [
            Box::new(build) as Box<dyn prometheus::core::Collector>,
            Box::new(scrapes.clone()),
            Box::new(auth_requests.clone()),
            Box::new(reload_ok.clone()),
            Box::new(reload_time.clone()),
        ] {
            registry.register(c).expect("self-metric names are unique");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(crate::process::ProcessMetrics::new()))
            .expect("process metric names are unique");

        SelfMetrics {
            registry,
            scrapes,
            auth_requests,
            reload_ok,
            reload_time,
        }
    }

    /// Counts this scrape and encodes every self-metric.
    pub fn render_scrape(&self) -> Vec<u8> {
        self.scrapes.inc();
        self.render()
    }

    /// The self-metrics as they stand, counting nothing: what a `HEAD`
    /// request measures the length of.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let families = self.registry.gather();
        // Encoding into a Vec only fails on invalid families, which the
        // registry refuses at registration.
        let _ = TextEncoder::new().encode(&families, &mut out);
        out
    }

    /// Records a configuration load.
    pub fn record_reload(&self, ok: bool) {
        self.reload_ok.set(ok as i64);
        if ok {
            self.reload_time
                .set(crate::project::unix_seconds(std::time::SystemTime::now()));
        }
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], prefix: &str) -> Vec<String> {
        String::from_utf8(text.to_vec())
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn auth_request_series_exist_at_zero_from_the_start() {
        let m = SelfMetrics::new();
        assert_eq!(
            lines(&m.render(), "dbss_auth_requests_total{"),
            [
                "dbss_auth_requests_total{kind=\"iam\",outcome=\"failure\"} 0",
                "dbss_auth_requests_total{kind=\"iam\",outcome=\"success\"} 0",
                "dbss_auth_requests_total{kind=\"metadata\",outcome=\"failure\"} 0",
                "dbss_auth_requests_total{kind=\"metadata\",outcome=\"success\"} 0",
            ]
        );
    }

    #[test]
    fn only_render_scrape_counts() {
        let m = SelfMetrics::new();
        assert_eq!(
            lines(&m.render(), "dbss_exporter_scrapes_total "),
            ["dbss_exporter_scrapes_total 0"]
        );
        assert_eq!(
            lines(&m.render_scrape(), "dbss_exporter_scrapes_total "),
            ["dbss_exporter_scrapes_total 1"]
        );
        assert_eq!(
            lines(&m.render(), "dbss_exporter_scrapes_total "),
            ["dbss_exporter_scrapes_total 1"]
        );
    }
}
