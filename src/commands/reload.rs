//! `perennial reload --pid PID`: sends the daemon SIGHUP and returns once it has reloaded.
//!
//! It is the units' `ExecReload=` on systemd 252 (Debian 12), where `Type=notify-reload`
//! does not exist yet and systemd counts a reload as done when `ExecReload=` exits;
//! systemd.service(5) asks for an `ExecReload=` that "synchronously waits for it to
//! complete", which `kill -HUP $MAINPID` does not.
//!
//! The daemon counts the SIGHUPs it receives and, after each reload, writes to
//! [`RELOADED_FILE`] in its state directory its process id and how many SIGHUPs that reload
//! covers. This reads that count, sends SIGHUP, and waits until the count for that process
//! has grown. It runs in the unit's sandbox, as the daemon's user, with `$STATE_DIRECTORY`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::commands::cli::{exit, ReloadArgs};
use crate::daemon::RELOADED_FILE;
use crate::state::resolve_state_dir;

/// How often the file is read while waiting: reloads take milliseconds.
const POLL: Duration = Duration::from_millis(20);

pub fn run(config_path: &Path, args: &ReloadArgs) -> u8 {
    match reload(config_path, args) {
        Ok(()) => exit::OK,
        Err((code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

fn reload(config_path: &Path, args: &ReloadArgs) -> Result<(), (u8, String)> {
    let dir = state_dir(config_path)?;
    let file = dir.join(RELOADED_FILE);
    let before = covered(&file, args.pid);
    let pid = libc::pid_t::try_from(args.pid).map_err(|_| {
        (
            exit::USAGE,
            format!("--pid {} is not a process id", args.pid),
        )
    })?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err((
            exit::FAILURE,
            format!("cannot send SIGHUP to process {}: {error}", args.pid),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        if covered(&file, args.pid) > before {
            return Ok(());
        }
        // SAFETY: as above; signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return Err((
                exit::FAILURE,
                format!("process {} ended before it finished reloading", args.pid),
            ));
        }
        if Instant::now() >= deadline {
            return Err((
                exit::FAILURE,
                format!(
                    "process {} did not finish reloading within {} s ({} was not updated)",
                    args.pid,
                    args.timeout,
                    file.display()
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// `$STATE_DIRECTORY` (under systemd), else `[state] dir` of the config: where the daemon
/// keeps its state, as `perennial run` resolves it.
fn state_dir(config_path: &Path) -> Result<PathBuf, (u8, String)> {
    let env = std::env::var_os("STATE_DIRECTORY").filter(|value| !value.is_empty());
    if env.is_some() {
        return Ok(resolve_state_dir(env.as_deref(), Path::new("")));
    }
    let config = crate::daemon::load_config(config_path).map_err(|error| {
        (
            exit::CONFIG,
            format!("{error}\n(the state directory is in the configuration)"),
        )
    })?;
    Ok(resolve_state_dir(None, &config.state.dir))
}

/// The SIGHUPs the last reload of process `pid` covers, from the file; 0 when the file is
/// missing, unreadable, or written by another process (an earlier run).
fn covered(file: &Path, pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(file) else {
        return 0;
    };
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(writer), Some(count)) if writer.parse() == Ok(pid) => count.parse().unwrap_or(0),
        _ => 0,
    }
}
