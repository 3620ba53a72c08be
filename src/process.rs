//! The `process_*` metrics that every Prometheus client library exports,
//! read from `/proc/self` with the `procfs` crate at every scrape.
//!
//! The `prometheus` crate has a process collector of its own, but it rounds
//! the CPU time and the start time down to whole seconds, so that a quiet
//! exporter shows no CPU at all and `rate()` over it moves in steps. This
//! one keeps the fractions, as Prometheus' Go client does, under the same
//! names and help texts.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Opts};

/// The process metrics of this process.
pub struct ProcessMetrics {
    cpu: Counter,
    open_fds: Gauge,
    max_fds: Gauge,
    virtual_memory: Gauge,
    resident_memory: Gauge,
    start_time: Gauge,
    threads: Gauge,
    /// Held while collecting: the CPU counter is moved by the difference
    /// from its last value, which two scrapes at once must not both add.
    collecting: Mutex<()>,
}

impl ProcessMetrics {
    /// The collector, with the start time read once.
    pub fn new() -> Self {
        let gauge = |name: &str, help: &str| {
            Gauge::with_opts(Opts::new(name, help)).expect("static metric options are valid")
        };
        let metrics = ProcessMetrics {
            cpu: Counter::with_opts(Opts::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            ))
            .expect("static metric options are valid"),
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            virtual_memory: gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            resident_memory: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            start_time: gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
            threads: gauge("process_threads", "Number of OS threads in the process."),
            collecting: Mutex::new(()),
        };
        if let (Ok(stat), Ok(boot)) = (myself_stat(), procfs::boot_time_secs()) {
            let since_boot = stat.starttime as f64 / procfs::ticks_per_second() as f64;
            metrics.start_time.set(boot as f64 + since_boot);
        }
        metrics
    }

    fn all(&self) -> [&dyn Collector; 7] {
        [
            &self.cpu,
            &self.open_fds,
            &self.max_fds,
            &self.virtual_memory,
            &self.resident_memory,
            &self.start_time,
            &self.threads,
        ]
    }

    /// Reads `/proc/self` into the metrics; what cannot be read keeps its
    /// last value.
    fn refresh(&self) {
        let Ok(me) = procfs::process::Process::myself() else {
            return;
        };
        if let Ok(n) = me.fd_count() {
            self.open_fds.set(n as f64);
        }
        if let Ok(limits) = me.limits() {
            if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                self.max_fds.set(max as f64);
            }
        }
        if let Ok(stat) = me.stat() {
            let ticks = (stat.utime + stat.stime) as f64;
            let cpu = ticks / procfs::ticks_per_second() as f64;
            self.cpu.inc_by((cpu - self.cpu.get()).max(0.0));
            self.virtual_memory.set(stat.vsize as f64);
            self.resident_memory
                .set(stat.rss as f64 * procfs::page_size() as f64);
            self.threads.set(stat.num_threads as f64);
        }
    }
}

impl Default for ProcessMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn myself_stat() -> procfs::ProcResult<procfs::process::Stat> {
    procfs::process::Process::myself()?.stat()
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.all().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_at_a_time = self.collecting.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh();
        self.all().into_iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    fn value(text: &str, name: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        line[name.len() + 1..].parse().unwrap()
    }

    fn render(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The CPU time is not rounded down to whole seconds: it is at least
    /// what `/proc` said just before the scrape.
    #[test]
    fn cpu_time_keeps_its_fraction() {
        let registry = Registry::new();
        registry.register(Box::new(ProcessMetrics::new())).unwrap();
        // Spend a little CPU, so that the time is not zero.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let stat = myself_stat().unwrap();
        let before = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;

        let text = render(&registry);

        let cpu = value(&text, "process_cpu_seconds_total");
        assert!(cpu > 0.0 && cpu >= before, "{cpu} < {before}: {text}");
        assert!(value(&text, "process_resident_memory_bytes") > 0.0);
        assert!(value(&text, "process_threads") >= 1.0);
        assert!(value(&text, "process_open_fds") >= 1.0);
        let start = value(&text, "process_start_time_seconds");
        let now = crate::project::unix_seconds(std::time::SystemTime::now());
        assert!(start > now - 3600.0 && start <= now, "{start} vs {now}");
    }
}
