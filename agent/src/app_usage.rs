//! What each app uses, and the temperature: for the system page.
//!
//! - Memory: a demo app's process (`<dataDir>/demo/<app>.pid`, its resident set from
//!   `/proc/<pid>/status`); on NixOS the app's user unit's cgroup (`memory.current` of
//!   `podman-<app>.service` under the agent user's `user@<uid>.service`). Unknown: None.
//! - Storage: bytes under `<dataDir>/<app>` (files only, symlinks not followed, bounded walk).
//! - Temperature: the hottest `/sys/class/thermal/thermal_zone*/temp`, else the hottest hwmon
//!   `temp*_input`; None when the machine exposes neither (VMs, containers).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Files looked at per app before the storage figure is given as a lower bound.
const MAX_FILES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppUsage {
    pub name: String,
    pub display_name: String,
    /// Bytes of memory in use, when known.
    pub memory: Option<u64>,
    /// Bytes of data under `<dataDir>/<app>`.
    pub storage: u64,
    /// The walk stopped early: `storage` is at least this much.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub storage_partial: bool,
}

fn vm_rss_bytes(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn demo_memory(data_dir: &Path, app: &str) -> Option<u64> {
    let text = std::fs::read_to_string(data_dir.join("demo").join(format!("{app}.pid"))).ok()?;
    let pid: u32 = text.split_whitespace().next()?.parse().ok()?;
    vm_rss_bytes(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn cgroup_memory(app: &str) -> Option<u64> {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let user = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service"
    ));
    let unit = format!("podman-{app}.service");
    [user.join("app.slice").join(&unit), user.join(&unit)]
        .iter()
        .find_map(|dir| {
            std::fs::read_to_string(dir.join("memory.current"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
}

pub fn app_memory(data_dir: &Path, app: &str) -> Option<u64> {
    demo_memory(data_dir, app).or_else(|| cgroup_memory(app))
}

/// (bytes, complete) of the regular files under `dir`.
pub fn dir_size(dir: &Path) -> (u64, bool) {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_FILES {
                return (total, false);
            }
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    (total, true)
}

pub fn app_usage(data_dir: &Path, name: &str, display_name: &str) -> AppUsage {
    let (storage, complete) = dir_size(&data_dir.join(name));
    AppUsage {
        name: name.to_string(),
        display_name: display_name.to_string(),
        memory: app_memory(data_dir, name),
        storage,
        storage_partial: !complete,
    }
}

fn read_millidegrees(path: &Path) -> Option<f64> {
    let v: i64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    // Sensors that are absent or broken report 0 or nonsense.
    (v > 0 && v < 150_000).then_some(v as f64 / 1000.0)
}

fn hottest(paths: impl Iterator<Item = PathBuf>) -> Option<f64> {
    paths
        .filter_map(|p| read_millidegrees(&p))
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
}

fn glob_children(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Degrees Celsius, rounded to one decimal, under `sys` (`/sys` outside tests).
pub fn temperature_in(sys: &Path) -> Option<f64> {
    let zones = glob_children(&sys.join("class/thermal"), "thermal_zone")
        .into_iter()
        .map(|z| z.join("temp"));
    let t = hottest(zones).or_else(|| {
        let inputs = glob_children(&sys.join("class/hwmon"), "hwmon")
            .into_iter()
            .flat_map(|h| glob_children(&h, "temp"))
            .filter(|p| p.to_string_lossy().ends_with("_input"));
        hottest(inputs)
    })?;
    Some((t * 10.0).round() / 10.0)
}

pub fn temperature() -> Option<f64> {
    temperature_in(Path::new("/sys"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_prefers_thermal_zones_then_hwmon_and_is_absent_without_either() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        assert_eq!(temperature_in(sys), None);
        let hw = sys.join("class/hwmon/hwmon0");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("temp1_input"), "51234\n").unwrap();
        std::fs::write(hw.join("temp1_label"), "Package\n").unwrap();
        assert_eq!(temperature_in(sys), Some(51.2));
        for (z, v) in [
            ("thermal_zone0", "40000"),
            ("thermal_zone1", "63500"),
            ("thermal_zone2", "0"),
        ] {
            let d = sys.join("class/thermal").join(z);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("temp"), v).unwrap();
        }
        assert_eq!(temperature_in(sys), Some(63.5));
    }

    #[test]
    fn storage_counts_files_not_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("a");
        std::fs::create_dir_all(app.join("sub")).unwrap();
        std::fs::write(app.join("x"), vec![0u8; 1000]).unwrap();
        std::fs::write(app.join("sub/y"), vec![0u8; 24]).unwrap();
        std::os::unix::fs::symlink("/usr", app.join("link")).unwrap();
        assert_eq!(dir_size(&app), (1024, true));
    }

    #[test]
    fn resident_memory_of_this_process() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_rss_bytes(&status).unwrap() > 1024 * 1024);
    }
}
