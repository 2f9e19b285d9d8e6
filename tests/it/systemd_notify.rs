//! systemd notifications, received on a real datagram socket as systemd would receive them.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use perennial::daemon::systemd::{watchdog_interval_from, Notifier};

/// A socket standing in for systemd's, in its own temporary folder.
struct FakeSystemd {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
}

impl FakeSystemd {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        FakeSystemd {
            _dir: dir,
            path,
            socket,
        }
    }

    /// The next datagram, as text.
    fn receive(&self) -> String {
        let mut buffer = vec![0; 4096];
        let length = self
            .socket
            .recv(&mut buffer)
            .expect("no message within 10 s");
        String::from_utf8(buffer[..length].to_vec()).unwrap()
    }

    /// Whether a datagram is waiting, without waiting for one.
    fn has_message(&self) -> bool {
        self.socket.set_nonblocking(true).unwrap();
        let waiting = self.socket.recv(&mut [0; 64]).is_ok();
        self.socket.set_nonblocking(false).unwrap();
        waiting
    }
}

#[test]
fn each_message_arrives_as_systemd_expects_it() {
    let systemd = FakeSystemd::new();
    let notifier = Notifier::for_socket(&systemd.path);
    assert!(notifier.is_enabled());

    notifier.ready();
    assert_eq!(systemd.receive(), "READY=1");
    notifier.status("x");
    assert_eq!(systemd.receive(), "STATUS=x");
    notifier.status("next: tips/pyproject at 09:30\nthen: showcase/stravalib");
    assert_eq!(
        systemd.receive(),
        "STATUS=next: tips/pyproject at 09:30 then: showcase/stravalib"
    );
    notifier.stopping();
    assert_eq!(systemd.receive(), "STOPPING=1");
    notifier.watchdog();
    assert_eq!(systemd.receive(), "WATCHDOG=1");
    assert!(!systemd.has_message());
}

#[test]
fn reloading_carries_the_monotonic_time_in_the_same_message() {
    let systemd = FakeSystemd::new();
    let notifier = Notifier::for_socket(&systemd.path);
    notifier.reloading();
    let message = systemd.receive();
    let usec = message
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("unexpected message {message:?}"));
    let usec: u64 = usec.parse().unwrap();
    assert!(usec > 0);
}

#[test]
fn notify_socket_from_values_including_the_abstract_namespace() {
    let systemd = FakeSystemd::new();
    let notifier = Notifier::from_values(Some(systemd.path.as_os_str()), None, None, 1);
    notifier.ready();
    assert_eq!(systemd.receive(), "READY=1");

    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    let name = format!("perennial-test-{}", std::process::id());
    let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let receiver = UnixDatagram::bind_addr(&address).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let socket = format!("@{name}");
    let notifier = Notifier::from_values(Some(OsStr::new(&socket)), None, None, 1);
    notifier.watchdog();
    let mut buffer = [0; 64];
    let length = receiver.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"WATCHDOG=1");
}

#[test]
fn without_a_socket_nothing_is_sent_and_nothing_fails() {
    let notifier = Notifier::from_values(None, Some("30000000"), None, 1);
    assert!(!notifier.is_enabled());
    assert_eq!(notifier.watchdog_interval(), None);
    notifier.ready();
    notifier.status("x");
    notifier.reloading();
    notifier.watchdog();
    notifier.stopping();

    let disabled = Notifier::disabled();
    assert!(!disabled.is_enabled());
    disabled.ready();

    // A socket that went away: warned about, never fatal.
    let dir = tempfile::tempdir().unwrap();
    let gone = Notifier::for_socket(dir.path().join("no-such-socket"));
    gone.ready();
    gone.watchdog();
}

#[test]
fn watchdog_interval_is_half_of_watchdog_usec_for_our_pid_only() {
    let our_pid = 4242;
    let check = |usec: Option<&str>, pid: Option<&str>| watchdog_interval_from(usec, pid, our_pid);
    assert_eq!(
        check(Some("30000000"), Some("4242")),
        Some(Duration::from_secs(15))
    );
    assert_eq!(check(Some("30000000"), None), Some(Duration::from_secs(15)));
    assert_eq!(
        check(Some("1000001"), None),
        Some(Duration::from_micros(500_000))
    );
    assert_eq!(check(Some("1"), None), Some(Duration::from_micros(1)));
    assert_eq!(check(Some("30000000"), Some("4243")), None);
    assert_eq!(check(Some("30000000"), Some("not a pid")), None);
    assert_eq!(check(Some("0"), None), None);
    assert_eq!(check(Some("soon"), None), None);
    assert_eq!(check(None, Some("4242")), None);

    let systemd = FakeSystemd::new();
    let socket = Some(systemd.path.as_os_str());
    let ours = Notifier::from_values(socket, Some("20000000"), Some("4242"), our_pid);
    assert_eq!(ours.watchdog_interval(), Some(Duration::from_secs(10)));
    let a_child_of_ours = Notifier::from_values(socket, Some("20000000"), Some("4242"), 4243);
    assert_eq!(a_child_of_ours.watchdog_interval(), None);
    let by_hand = Notifier::for_socket(&systemd.path);
    assert_eq!(by_hand.watchdog_interval(), None);
    let by_hand = by_hand.with_watchdog_interval(Some(Duration::from_secs(3)));
    assert_eq!(by_hand.watchdog_interval(), Some(Duration::from_secs(3)));
}
