//! What the benches that run the binary share.

/// A numeric field of `/proc/PID/status` (`VmRSS`, `VmHWM`: KiB), 0 when absent.
pub fn proc_status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The bundled config (as `FakeServer::bundled_config` gives it) with the reply caps off, so
/// a bench of 1,000 mentions measures replies, not skips.
#[allow(dead_code)] // not every bench answers mentions
pub fn caps_off(bundled_config: String) -> String {
    let config = bundled_config
        .replace("per_account_per_hour = 3", "per_account_per_hour = 1000")
        .replace("per_hour = 60", "per_hour = 10000");
    assert!(config.contains("per_hour = 10000"), "the caps are set off");
    config
}
