//! The demo fleet: projects in two regions whose audit instances move
//! through their upgrade states over a few minutes, so that a dashboard
//! shows every state without a cloud account.
//!
//! Most instances follow a cycle of [`CYCLE`]: no upgrade, then an upgrade
//! becomes available, then it runs through [`STEP_NAMES`] one step every
//! [`STEP_EVERY`], then it is done with a new `current_version`. A few
//! instances hold still: the API page's example instance, one with an upgrade
//! available and never applied, and one whose upgrade failed a step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The length of one upgrade cycle.
pub const CYCLE: Duration = Duration::from_secs(360);
/// How long each upgrade step takes.
pub const STEP_EVERY: Duration = Duration::from_secs(30);
/// The named steps of an upgrade.
pub const STEP_NAMES: [&str; 5] = [
    "check_environment",
    "backup_configuration",
    "upload_package",
    "install_package",
    "restart_service",
];
/// The regions the demo projects live in, alternately.
pub const REGIONS: [&str; 2] = ["cn-north-4", "ap-southeast-1"];
/// The API page's example instance.
pub const EXAMPLE_INSTANCE: &str = "5ac5856d-5c40-431d-98cc-1501eb7d8e11";

/// One demo project.
#[derive(Debug, Clone)]
pub struct DemoProject {
    /// Its id, 32 hex characters like the real ones.
    pub project_id: String,
    /// Its region.
    pub region: String,
    instances: Vec<DemoInstance>,
}

#[derive(Debug, Clone)]
struct DemoInstance {
    id: String,
    role: Role,
    total: i64,
    offset: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Example,
    Failed,
    Pending,
    Cycling,
}

/// The whole demo fleet, with the time it started.
#[derive(Debug, Clone)]
pub struct Fleet {
    projects: Vec<DemoProject>,
    started: SystemTime,
}

impl Fleet {
    /// `projects` projects of `instances` instances each, starting now.
    pub fn new(projects: usize, instances: usize) -> Self {
        Self::starting_at(projects, instances, SystemTime::now())
    }

    /// The same fleet as if it had started at `started`.
    pub fn starting_at(projects: usize, instances: usize, started: SystemTime) -> Self {
        let mut n = 0usize;
        let projects = (0..projects)
            .map(|p| DemoProject {
                project_id: project_id(p),
                region: REGIONS[p % REGIONS.len()].to_string(),
                instances: (0..instances)
                    .map(|_| {
                        n += 1;
                        demo_instance(n - 1)
                    })
                    .collect(),
            })
            .collect();
        Fleet { projects, started }
    }

    /// The projects, in order.
    pub fn projects(&self) -> &[DemoProject] {
        &self.projects
    }

    /// The `audit_upgrade_infos` of project `index` as of now.
    pub fn instances_now(&self, index: usize) -> Vec<Value> {
        self.instances_at(index, SystemTime::now())
    }

    /// The `audit_upgrade_infos` of project `index` as of `now`.
    pub fn instances_at(&self, index: usize, now: SystemTime) -> Vec<Value> {
        let elapsed = now.duration_since(self.started).unwrap_or_default();
        let Some(p) = self.projects.get(index) else {
            return Vec::new();
        };
        p.instances
            .iter()
            .map(|i| i.at(elapsed, self.started))
            .collect()
    }
}

fn project_id(p: usize) -> String {
    format!(
        "{:08x}{:024x}",
        0x0db5_5000u32 + p as u32,
        (p as u128 + 1) * 0x9e37_79b9_7f4a_7c15
    )
}

fn demo_instance(n: usize) -> DemoInstance {
    let role = match n {
        0 => Role::Example,
        1 => Role::Failed,
        2 => Role::Pending,
        _ => Role::Cycling,
    };
    let id = match role {
        Role::Example => EXAMPLE_INSTANCE.to_string(),
        _ => format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            0x1d0b_0000u32 + n as u32,
            n % 0xffff,
            n % 0xfff,
            (n * 7) % 0xfff,
            n * 104_729
        ),
    };
    DemoInstance {
        id,
        role,
        total: 1 + (n % 4) as i64,
        offset: Duration::from_secs((n as u64 * 47) % CYCLE.as_secs()),
    }
}

/// The version an instance runs after `cycles` completed upgrades.
fn version(cycles: u64) -> String {
    let day = 21 + cycles;
    format!("25.{:02}.{:02}.163957", 7 + day / 28, day % 28 + 1)
}

impl DemoInstance {
    fn at(&self, elapsed: Duration, started: SystemTime) -> Value {
        match self.role {
            Role::Example => json!({
                "instance_id": self.id, "current_version": "25.07.21.163957", "status": 2, "total": 1
            }),
            Role::Pending => json!({
                "instance_id": self.id, "current_version": version(0), "upgrade_version": version(1),
                "status": 1, "total": self.total
            }),
            Role::Failed => self.failed(started),
            Role::Cycling => self.cycling(elapsed, started),
        }
    }

    fn failed(&self, started: SystemTime) -> Value {
        let steps: Vec<Value> = (0..3)
            .map(|s| {
                let code = if s == 2 { "FAILED" } else { "SUCCESS" };
                let msg = if s == 2 {
                    "upload of the upgrade package was interrupted"
                } else {
                    "done"
                };
                step(s, code, msg, started + STEP_EVERY * s as u32)
            })
            .collect();
        json!({
            "instance_id": self.id, "current_version": version(0), "upgrade_version": version(1),
            "status": 0, "total": self.total, "steps": steps
        })
    }

    fn cycling(&self, elapsed: Duration, started: SystemTime) -> Value {
        let t = elapsed + self.offset;
        let cycles = t.as_secs() / CYCLE.as_secs();
        let phase = Duration::from_secs(t.as_secs() % CYCLE.as_secs());
        let cycle_start = started + elapsed - phase;
        let (current, next) = (version(cycles), version(cycles + 1));
        let available = Duration::from_secs(60);
        let upgrading = Duration::from_secs(150);
        let done = upgrading + STEP_EVERY * STEP_NAMES.len() as u32;

        if phase < available {
            return json!({"instance_id": self.id, "current_version": current, "status": 2, "total": self.total});
        }
        if phase < upgrading {
            return json!({"instance_id": self.id, "current_version": current, "upgrade_version": next, "status": 1, "total": self.total});
        }
        if phase >= done {
            return json!({"instance_id": self.id, "current_version": next, "status": 2, "total": self.total});
        }
        let into = (phase - upgrading).as_secs() / STEP_EVERY.as_secs();
        let steps: Vec<Value> = (0..=into as usize)
            .map(|s| {
                let code = if (s as u64) < into {
                    "SUCCESS"
                } else {
                    "RUNNING"
                };
                step(s, code, "", cycle_start + upgrading + STEP_EVERY * s as u32)
            })
            .collect();
        json!({
            "instance_id": self.id, "current_version": current, "upgrade_version": next,
            "status": 0, "total": self.total, "steps": steps
        })
    }
}

/// One step; times alternate between the formats the API may use.
fn step(index: usize, code: &str, msg: &str, at: SystemTime) -> Value {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let time = match index % 3 {
        0 => json!(chrono::DateTime::from_timestamp(secs as i64, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())),
        1 => json!((secs * 1000).to_string()),
        _ => json!(chrono::DateTime::from_timestamp(secs as i64, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())),
    };
    json!({ "step_name": STEP_NAMES[index], "result_code": code, "msg": msg, "time": time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_instance_is_first_and_as_documented() {
        let f = Fleet::new(4, 3);
        let list = f.instances_now(0);
        assert_eq!(
            list[0],
            json!({"instance_id": EXAMPLE_INSTANCE, "current_version": "25.07.21.163957", "status": 2, "total": 1})
        );
        assert_eq!(f.projects().len(), 4);
        assert_eq!(f.projects()[1].region, "ap-southeast-1");
        assert_eq!(f.projects()[0].project_id.len(), 32);
    }

    #[test]
    fn a_cycling_instance_goes_through_every_state() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let f = Fleet::starting_at(1, 4, start);
        let mut statuses = std::collections::BTreeSet::new();
        let mut versions = std::collections::BTreeSet::new();
        for s in (0..CYCLE.as_secs() * 2).step_by(10) {
            let v = &f.instances_at(0, start + Duration::from_secs(s))[3];
            statuses.insert(v["status"].as_i64().unwrap());
            versions.insert(v["current_version"].as_str().unwrap().to_string());
            if v["status"] == 0 {
                assert!(!v["steps"].as_array().unwrap().is_empty());
            }
        }
        assert_eq!(statuses, [0, 1, 2].into_iter().collect());
        assert!(versions.len() >= 2, "the version moves on: {versions:?}");
    }

    #[test]
    fn the_failed_instance_has_a_failed_step() {
        let f = Fleet::new(1, 2);
        let v = &f.instances_now(0)[1];
        assert_eq!(v["status"], 0);
        assert_eq!(v["steps"][2]["result_code"], "FAILED");
    }
}
