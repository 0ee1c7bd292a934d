//! Host usage for `/api/system/status` and `/api/system/storage` (upstream shapes): CPU from two
//! `/proc/stat` samples, memory from `/proc/meminfo` (total − available), disk from statvfs(2).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// `{"cpu","memory","disk"}`: rounded percentages (upstream's shape), and our additions:
/// `temperature` in °C when the machine has a sensor, memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub cpu: u32,
    pub memory: u32,
    pub disk: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total: Option<u64>,
}

/// `{"used","total","free","percentage","path"}` in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Storage {
    pub used: u64,
    pub total: u64,
    pub free: u64,
    pub percentage: u32,
    pub path: String,
}

/// (busy, total) jiffies of the aggregate `cpu` line.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn percent(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return 0;
    }
    ((part as f64 / whole as f64) * 100.0).round().min(100.0) as u32
}

/// CPU use over `window`.
pub async fn cpu_percent(window: Duration) -> u32 {
    let read = || {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| cpu_times(&s))
    };
    let Some((b1, t1)) = read() else { return 0 };
    tokio::time::sleep(window).await;
    let Some((b2, t2)) = read() else { return 0 };
    percent(b2.saturating_sub(b1), t2.saturating_sub(t1))
}

fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (used, total) bytes: total − available, as `memory_percent`.
pub fn memory_bytes() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = meminfo_kib(&text, "MemTotal:")?;
    let avail = meminfo_kib(&text, "MemAvailable:")?;
    Some((total.saturating_sub(avail) * 1024, total * 1024))
}

pub fn memory_percent() -> u32 {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    match (
        meminfo_kib(&text, "MemTotal:"),
        meminfo_kib(&text, "MemAvailable:"),
    ) {
        (Some(total), Some(avail)) => percent(total.saturating_sub(avail), total),
        _ => 0,
    }
}

pub fn storage(path: &Path) -> std::io::Result<Storage> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    // SAFETY: statvfs fills the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let free = st.f_bavail as u64 * frsize;
    let used = total.saturating_sub(st.f_bfree as u64 * frsize);
    Ok(Storage {
        used,
        total,
        free,
        // As df: used / (used + available to users).
        percentage: percent(used, used + free),
        path: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_parsing() {
        let stat = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(cpu_times(stat), Some((200, 1000)));
        assert_eq!(cpu_times("intr 1 2"), None);
    }

    #[test]
    fn memory_and_disk_are_plausible_here() {
        let m = memory_percent();
        assert!((1..=100).contains(&m), "{m}");
        let s = storage(Path::new("/")).unwrap();
        assert!(
            s.total > 0 && s.used <= s.total && s.percentage <= 100,
            "{s:?}"
        );
    }
}
