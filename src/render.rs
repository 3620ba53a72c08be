//! The Prometheus text exposition format (version 0.0.4), written by hand.
//!
//! The `prometheus` crate builds a family tree of metric objects and walks
//! it on every scrape, which costs tens of milliseconds and a page-sized
//! allocation per scrape at 10,000 series. Here the page is written once per
//! publish by [`render_page`], straight from each project's state, with the
//! project labels escaped once per poll ([`ProjectLabels`]); scrapes then
//! serve those bytes as they are (see [`crate::snapshot`]).

use std::fmt::Write as _;

/// The families whose series come from polls, in page order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `dbss_instance_upgrade_status`
    UpgradeStatus,
    /// `dbss_instance_upgrade_capacity`
    UpgradeCapacity,
    /// `dbss_instance_upgrade_steps`
    UpgradeSteps,
    /// `dbss_instance_upgrade_step_info`
    StepInfo,
    /// `dbss_instance_upgrade_step_timestamp_seconds`
    StepTimestamp,
    /// `dbss_up`
    Up,
    /// `dbss_instances`
    Instances,
    /// `dbss_last_poll_success_timestamp_seconds`
    LastPollSuccess,
    /// `dbss_poll_duration_seconds`
    PollDuration,
    /// `dbss_api_requests_total`
    ApiRequests,
    /// `dbss_poll_errors_total`
    PollErrors,
    /// `dbss_api_retries_total`
    ApiRetries,
    /// `dbss_credentials_expiry_timestamp_seconds`
    CredentialsExpiry,
}

/// How many [`Family`] variants there are.
pub const FAMILY_COUNT: usize = 13;

impl Family {
    /// Every family, in page order.
    pub const ALL: [Family; FAMILY_COUNT] = [
        Family::UpgradeStatus,
        Family::UpgradeCapacity,
        Family::UpgradeSteps,
        Family::StepInfo,
        Family::StepTimestamp,
        Family::Up,
        Family::Instances,
        Family::LastPollSuccess,
        Family::PollDuration,
        Family::ApiRequests,
        Family::PollErrors,
        Family::ApiRetries,
        Family::CredentialsExpiry,
    ];

    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Family::UpgradeStatus => "dbss_instance_upgrade_status",
            Family::UpgradeCapacity => "dbss_instance_upgrade_capacity",
            Family::UpgradeSteps => "dbss_instance_upgrade_steps",
            Family::StepInfo => "dbss_instance_upgrade_step_info",
            Family::StepTimestamp => "dbss_instance_upgrade_step_timestamp_seconds",
            Family::Up => "dbss_up",
            Family::Instances => "dbss_instances",
            Family::LastPollSuccess => "dbss_last_poll_success_timestamp_seconds",
            Family::PollDuration => "dbss_poll_duration_seconds",
            Family::ApiRequests => "dbss_api_requests_total",
            Family::PollErrors => "dbss_poll_errors_total",
            Family::ApiRetries => "dbss_api_retries_total",
            Family::CredentialsExpiry => "dbss_credentials_expiry_timestamp_seconds",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Family::UpgradeStatus => "Upgrade status of a DBSS audit instance: 0 upgrading, 1 an upgrade is available and not applied, 2 the upgrade conditions are not met.",
            Family::UpgradeCapacity => "The total (capacity) field the upgrade-status API reports for the instance.",
            Family::UpgradeSteps => "Number of upgrade steps the API lists for the instance.",
            Family::StepInfo => "One upgrade step of an instance, by position, with its name and result code.",
            Family::StepTimestamp => "Time of an upgrade step, in Unix seconds.",
            Family::Up => "Whether the last poll of the project succeeded (1) or failed (0).",
            Family::Instances => "Number of audit instances in the last good answer for the project.",
            Family::LastPollSuccess => "Unix time of the last successful poll of the project.",
            Family::PollDuration => "Duration of the last poll of the project, retries included, in seconds.",
            Family::ApiRequests => "Requests made to the DBSS API, by HTTP status code (error: no answer).",
            Family::PollErrors => "Failed polls of the project, by reason.",
            Family::ApiRetries => "Requests to the DBSS API that were retries of a failed request.",
            Family::CredentialsExpiry => "Unix time at which the credential used for the project expires.",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Family::ApiRequests | Family::PollErrors | Family::ApiRetries => "counter",
            _ => "gauge",
        }
    }

    /// The `# HELP` and `# TYPE` lines of the family.
    pub fn header(self) -> String {
        format!(
            "# HELP {n} {h}\n# TYPE {n} {k}\n",
            n = self.name(),
            h = self.help(),
            k = self.kind()
        )
    }
}

/// Appends `value` escaped for a label value: `\` `"` and newline.
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a sample value as the exposition format spells it.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v != 0.0 && !(1e-5..1e15).contains(&v.abs()) {
        // Rust spells 1e300 with three hundred digits: use the exponent
        // form, which the exposition format also accepts, for values far
        // from one.
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// The labels every series of one project carries, escaped once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectLabels {
    /// `project_id="…",region="…"`.
    prefix: String,
    /// `,env="prod"` and the target's other labels, or empty.
    suffix: String,
}

impl ProjectLabels {
    /// Escapes the project's labels; `extra` must be sorted and valid names.
    pub fn new(project_id: &str, region: &str, extra: &[(String, String)]) -> Self {
        let mut prefix = String::from("project_id=\"");
        escape_label_value(&mut prefix, project_id);
        prefix.push_str("\",region=\"");
        escape_label_value(&mut prefix, region);
        prefix.push('"');
        let mut suffix = String::new();
        for (name, value) in extra {
            let _ = write!(suffix, ",{name}=\"");
            escape_label_value(&mut suffix, value);
            suffix.push('"');
        }
        ProjectLabels { prefix, suffix }
    }
}

/// Writes samples of one family, for one project, onto a page.
pub struct SeriesWriter<'a> {
    labels: &'a ProjectLabels,
    family: Family,
    out: &'a mut String,
}

impl<'a> SeriesWriter<'a> {
    /// Starts writing `family` samples of the project with `labels` to `out`.
    pub fn new(labels: &'a ProjectLabels, family: Family, out: &'a mut String) -> Self {
        SeriesWriter {
            labels,
            family,
            out,
        }
    }

    /// Writes one sample with the project's labels plus `labels`.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let b = &mut *self.out;
        b.push_str(self.family.name());
        b.push('{');
        b.push_str(&self.labels.prefix);
        for (name, v) in labels {
            b.push(',');
            b.push_str(name);
            b.push_str("=\"");
            escape_label_value(b, v);
            b.push('"');
        }
        b.push_str(&self.labels.suffix);
        b.push_str("} ");
        write_value(b, value);
        b.push('\n');
    }
}

/// Renders a page family by family: each family's header once, then what
/// `write` puts down for it; a family nothing was written for is left out.
/// `size_hint` is the expected size, to allocate once.
pub fn render_page(size_hint: usize, mut write: impl FnMut(Family, &mut String)) -> String {
    let mut page = String::with_capacity(size_hint);
    for family in Family::ALL {
        let header_at = page.len();
        page.push_str(&family.header());
        let body_at = page.len();
        write(family, &mut page);
        if page.len() == body_at {
            page.truncate(header_at);
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd é");
        assert_eq!(s, "a\\\\b\\\"c\\nd é");
    }

    #[test]
    fn values_use_the_exposition_spelling() {
        let cases = [
            (1.0, "1"),
            (0.25, "0.25"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (-3.0, "-3"),
            (1764790000.5, "1764790000.5"),
            (0.0, "0"),
            (1e300, "1e300"),
            (-2.5e15, "-2.5e15"),
            (999_999_999_999_999.0, "999999999999999"),
            (0.00001, "0.00001"),
            (4.2e-7, "4.2e-7"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            write_value(&mut s, v);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn families_are_grouped_and_empty_ones_left_out() {
        let a = ProjectLabels::new("a", "r1", &[("env".into(), "prod".into())]);
        let b = ProjectLabels::new("b", "r2", &[]);
        let page = render_page(0, |family, out| match family {
            Family::UpgradeStatus => {
                SeriesWriter::new(&a, family, out).sample(&[("instance_id", "i1")], 1.0)
            }
            Family::Up => {
                SeriesWriter::new(&a, family, out).sample(&[], 1.0);
                SeriesWriter::new(&b, family, out).sample(&[], 0.0);
            }
            _ => {}
        });
        let lines: Vec<&str> = page.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "dbss_instance_upgrade_status{project_id=\"a\",region=\"r1\",instance_id=\"i1\",env=\"prod\"} 1",
                "dbss_up{project_id=\"a\",region=\"r1\",env=\"prod\"} 1",
                "dbss_up{project_id=\"b\",region=\"r2\"} 0",
            ]
        );
        assert_eq!(page.matches("# TYPE dbss_up gauge").count(), 1);
        assert!(!page.contains("dbss_instances"));
    }
}
