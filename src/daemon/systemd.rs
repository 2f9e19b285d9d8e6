//! Tells systemd what the daemon is doing (`sd_notify(3)`): ready, status, reloading,
//! stopping, and watchdog pings.
//!
//! Messages are formatted by the `sd-notify` crate (`NotifyState`, and the monotonic clock
//! that `RELOADING=1` must carry for `Type=notify-reload` on systemd 253+), but sent from here:
//! that crate reads `NOTIFY_SOCKET` on every call, so a test could only aim it at its own
//! socket by changing the process environment, and it treats an abstract socket (`@name`, what
//! systemd uses inside containers) as a file path.
//!
//! Each message goes in one datagram on a fresh, non-blocking socket, as `sd_notify` does: a
//! fresh socket still works after systemd re-executes itself and recreates its socket, and a
//! busy PID 1 drops a message instead of stalling a runtime thread. A failure to send is
//! logged and never fatal; it is a warning once, then quiet until sending works again, so a
//! lost socket does not fill the journal with a line per watchdog ping.
//!
//! The environment is read once and left in place (no "unset_env"): perennial starts no
//! child processes that could inherit it, removing variables is unsound once the runtime's
//! threads run, and tests share one process.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends notifications to systemd, or does nothing when not started by it. Cheap to clone;
/// clones share the "sending is failing" state that keeps warnings to one per outage.
#[derive(Clone)]
pub struct Notifier {
    socket: Option<NotifySocket>,
    watchdog_interval: Option<Duration>,
    failing: Arc<AtomicBool>,
}

#[derive(Clone, PartialEq, Eq)]
enum NotifySocket {
    Path(PathBuf),
    /// Linux abstract namespace: `NOTIFY_SOCKET=@name`.
    Abstract(Vec<u8>),
}

impl fmt::Display for NotifySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifySocket::Path(path) => write!(f, "{}", path.display()),
            NotifySocket::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("socket", &self.socket.as_ref().map(ToString::to_string))
            .field("watchdog_interval", &self.watchdog_interval)
            .finish()
    }
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`; a no-op notifier when
    /// `NOTIFY_SOCKET` is unset (not started by systemd, or not `Type=notify`).
    pub fn from_env() -> Self {
        let watchdog_usec = std::env::var("WATCHDOG_USEC").ok();
        let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::from_values(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            watchdog_usec.as_deref(),
            watchdog_pid.as_deref(),
            std::process::id(),
        )
    }

    /// What [`Notifier::from_env`] builds, from given values. A socket address systemd may
    /// use but this cannot (`vsock:`) gives a no-op notifier and a warning.
    pub fn from_values(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        our_pid: u32,
    ) -> Self {
        let socket = notify_socket.and_then(parse_notify_socket);
        let watchdog_interval = match socket {
            Some(_) => watchdog_interval_from(watchdog_usec, watchdog_pid, our_pid),
            // Pings could not be delivered, so there is nothing to schedule.
            None => None,
        };
        Notifier {
            socket,
            watchdog_interval,
            failing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Notifier::from_values(None, None, None, 0)
    }

    /// A notifier that sends to the datagram socket at `path`, without a watchdog (add one
    /// with [`Notifier::with_watchdog_interval`]).
    pub fn for_socket(path: impl Into<PathBuf>) -> Self {
        Notifier {
            socket: Some(NotifySocket::Path(path.into())),
            watchdog_interval: None,
            failing: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn with_watchdog_interval(mut self, interval: Option<Duration>) -> Self {
        self.watchdog_interval = interval;
        self
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to call [`Notifier::watchdog`]: half of `WATCHDOG_USEC`, as
    /// `sd_watchdog_enabled(3)` advises; `None` when systemd expects no pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// `READY=1`: start-up (or a reload) is finished.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// `STATUS=…`, shown by `systemctl status`. Line breaks become spaces: the protocol is
    /// one assignment per line.
    pub fn status(&self, text: &str) {
        let one_line = text.replace(['\n', '\r'], " ");
        self.send(&[NotifyState::Status(&one_line)]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (systemd 253+ fails a `Type=notify-reload` service
    /// without it). Call [`Notifier::ready`] when the reload is done.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(error) => {
                tracing::debug!("no monotonic clock for MONOTONIC_USEC: {error}");
                self.send(&[NotifyState::Reloading]);
            }
        }
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// `WATCHDOG=1`: still alive.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        let Some(socket) = &self.socket else {
            return;
        };
        let message = states
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        match send_datagram(socket, message.as_bytes()) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("notifying systemd through {socket} works again");
                }
            }
            Err(error) => {
                if self.failing.swap(true, Ordering::Relaxed) {
                    tracing::debug!("could not send {message:?} to systemd at {socket}: {error}");
                } else {
                    tracing::warn!(
                        "could not send {message:?} to systemd at {socket}: {error}. perennial \
                         keeps running, but systemd may consider it not ready or hung; further \
                         failures are logged at debug level"
                    );
                }
            }
        }
    }
}

/// `NOTIFY_SOCKET` as `sd_notify(3)` defines it: a path, or `@name` for the abstract namespace.
fn parse_notify_socket(value: &OsStr) -> Option<NotifySocket> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    match bytes {
        [] => None,
        [b'@', name @ ..] => Some(NotifySocket::Abstract(name.to_vec())),
        _ if bytes.starts_with(b"vsock:") || bytes.starts_with(b"vsock-") => {
            tracing::warn!(
                "NOTIFY_SOCKET={} is a VSOCK address, which perennial cannot send to; systemd \
                 will not get readiness or watchdog messages",
                value.to_string_lossy()
            );
            None
        }
        _ => Some(NotifySocket::Path(PathBuf::from(value))),
    }
}

fn send_datagram(socket: &NotifySocket, message: &[u8]) -> io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    sender.set_nonblocking(true)?;
    let sent = match socket {
        NotifySocket::Path(path) => sender.send_to(message, path)?,
        NotifySocket::Abstract(name) => send_to_abstract(&sender, name, message)?,
    };
    if sent != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", message.len()),
        ));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_to_abstract(sender: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sender.send_to_addr(message, &address)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_to_abstract(_sender: &UnixDatagram, _name: &[u8], _message: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// Half of `WATCHDOG_USEC` (never zero), when the watchdog is on and meant for `our_pid`:
/// `WATCHDOG_PID` unset, or equal to it. Unparsable values or `0` mean no watchdog, as in
/// `sd_watchdog_enabled(3)`.
pub fn watchdog_interval_from(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    our_pid: u32,
) -> Option<Duration> {
    let usec: u64 = watchdog_usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = watchdog_pid {
        if pid.trim().parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    Some(Duration::from_micros((usec / 2).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_forms() {
        let parse = |value: &str| parse_notify_socket(OsStr::new(value));
        assert!(
            parse("/run/systemd/notify") == Some(NotifySocket::Path("/run/systemd/notify".into()))
        );
        assert!(
            parse("@/org/freedesktop/systemd1/notify")
                == Some(NotifySocket::Abstract(
                    b"/org/freedesktop/systemd1/notify".to_vec()
                ))
        );
        assert!(parse("").is_none());
        assert!(parse("vsock:2:1234").is_none());
    }

    #[test]
    fn a_failed_send_is_remembered_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let notifier = Notifier::for_socket(&path);
        notifier.ready();
        assert!(notifier.failing.load(Ordering::Relaxed));
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        notifier.watchdog();
        assert!(!notifier.failing.load(Ordering::Relaxed));
        let mut buffer = [0; 64];
        let length = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"WATCHDOG=1");
    }
}
