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

/// `perennial run` as the benches start it: the release binary with the fake server's token,
/// journald-style logs, and nothing inherited from a systemd the bench itself may run under
/// (state directory, notify socket, watchdog). The caller sets the folder and the output.
pub fn perennial_run(token: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"));
    command
        .arg("run")
        .env("PERENNIAL_TOKEN", token)
        .env("JOURNAL_STREAM", "0:0")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC");
    command
}

/// Sends SIGTERM to `pid`, as systemd stops a service; whether `kill` could send it.
#[allow(dead_code)] // not every bench stops what it started
pub fn sigterm(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}
