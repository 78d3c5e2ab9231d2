//! Where a session's activity goes besides the display: `--events FILE|-` (one JSON object per
//! line, for log shippers) and `--alert-command CMD` (run once per new refusal, details in its
//! environment). Neither may slow or stop the session: lines go through a bounded queue to a
//! writer thread (a hung reader or a full disk drops lines, counted and said in the stream),
//! and commands run in the background, a few at a time, each for at most a minute.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    os::{
        fd::AsFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc,
    },
    time::Duration,
};

use super::{activity::Activity, display, RecordError};
use crate::output;

/// Lines queued for the writer before new ones are dropped.
const QUEUE: usize = 8192;
/// Alert commands running at once, and waiting to run, before new ones are dropped.
const ALERTS_RUNNING: usize = 4;
const ALERTS_WAITING: usize = 256;
/// How long an alert command may run before it is killed.
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end of a session waits for the queue and the running commands.
const DRAIN: Duration = Duration::from_secs(5);

/// The session's event stream and alert command, either or both absent.
#[derive(Default)]
pub struct Observers {
    events: Option<EventWriter>,
    alerts: Option<Alerts>,
}

impl Observers {
    /// Opens `events` (appending; `-` is standard output) and takes `alert_command`; a file that
    /// cannot be written is an error now, before any recording.
    pub fn open(events: Option<&Path>, alert_command: Option<&str>) -> Result<Self, RecordError> {
        Ok(Self {
            events: events.map(EventWriter::open).transpose()?,
            alerts: alert_command.map(|c| Alerts::new(c.to_string())),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_none() && self.alerts.is_none()
    }

    /// Hands `activity` on; never blocks.
    pub fn publish(&self, activity: &[Activity]) {
        for a in activity {
            if let Some(w) = &self.events {
                w.send(a.to_json().to_string());
            }
            if let (Some(alerts), Some(env)) = (&self.alerts, a.alert_env()) {
                alerts.run(env);
            }
        }
    }

    /// The end of a session: waits a little for queued lines and running commands.
    pub async fn finish(self) {
        if let Some(a) = self.alerts {
            a.wait(DRAIN).await;
        }
        if let Some(w) = self.events {
            tokio::task::spawn_blocking(move || w.close(DRAIN))
                .await
                .unwrap_or_default();
        }
    }
}

/// The `--events` writer: a thread appending lines, fed by a bounded queue.
struct EventWriter {
    tx: Option<mpsc::SyncSender<String>>,
    dropped: Arc<AtomicU64>,
    done: mpsc::Receiver<()>,
}

/// Whether the last whole line of `tail` is one of ours: a JSON object with an `event`. A
/// last line cut short (a full disk, a crash mid-write) is not looked at; the stream goes on
/// after it on a line of its own.
fn is_event_line(tail: &[u8]) -> bool {
    let text = String::from_utf8_lossy(tail);
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => return false,
    };
    let last = whole.rsplit('\n').next().unwrap_or("");
    serde_json::from_str::<serde_json::Value>(last).is_ok_and(|v| v.get("event").is_some())
}

/// Opens `path` to append events: created (0600) if missing, never through a link, and never a
/// file that holds something else than our events (it would be a file we did not write).
/// Returns the file and whether its last line was cut short.
fn open_log(path: &Path) -> std::io::Result<(File, bool)> {
    // Nothing but a regular file is opened at all (a device may act on open).
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => {
            return Err(std::io::Error::other(
                "it is not a regular file (name a file, or `-` for standard output)",
            ))
        }
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other(
            "it is not a regular file (name a file, or `-` for standard output)",
        ));
    }
    // A file someone else owns, or a hard link to one elsewhere, is not our log.
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me || meta.nlink() > 1 {
        return Err(std::io::Error::other(
            "it is owned by another user or has other links; left as it is",
        ));
    }
    let len = meta.len();
    let mut cut = false;
    if len > 0 {
        let start = len.saturating_sub(64 << 10);
        f.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        Read::by_ref(&mut f).take(64 << 10).read_to_end(&mut tail)?;
        if !is_event_line(&tail) {
            return Err(std::io::Error::other(
                "it exists and is not an event log of seccomp-tracer; left as it is",
            ));
        }
        cut = !tail.ends_with(b"\n");
    }
    Ok((f, cut))
}

impl EventWriter {
    fn open(path: &Path) -> Result<Self, RecordError> {
        let out: Box<dyn Write + Send> = if output::is_stdout(path) {
            Box::new(std::io::stdout())
        } else {
            let (mut f, cut) = open_log(path).map_err(|source| output::OutputError {
                path: path.to_path_buf(),
                source,
            })?;
            if cut {
                // The line cut short ends here; ours start on their own.
                let _ = write_all_blocking(&mut f, b"\n");
            }
            Box::new(f)
        };
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let (done_tx, done) = mpsc::channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        let name = PathBuf::from(path);
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                write_lines(out, rx, &lost, &name);
                let _ = done_tx.send(());
            })?;
        Ok(Self {
            tx: Some(tx),
            dropped,
            done,
        })
    }

    fn send(&self, line: String) {
        if let Some(tx) = &self.tx {
            if tx.try_send(line).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Ends the stream: the writer finishes the queue, for at most `wait`.
    fn close(mut self, wait: Duration) {
        self.tx = None;
        let _ = self.done.recv_timeout(wait);
    }
}

/// The writer thread: one line per write; a line that cannot be written is counted, said once
/// on stderr, and said in the stream once it can be written again.
fn write_lines(
    mut out: Box<dyn Write + Send>,
    rx: mpsc::Receiver<String>,
    dropped: &AtomicU64,
    path: &Path,
) {
    let mut failing = false;
    for line in rx {
        let lost = dropped.swap(0, Ordering::Relaxed);
        let mut text = String::new();
        if lost > 0 {
            text.push_str(&format!("{{\"event\":\"dropped\",\"count\":{lost}}}\n"));
        }
        text.push_str(&line);
        text.push('\n');
        match write_all_blocking(&mut out, text.as_bytes()) {
            Ok(()) => failing = false,
            Err(e) => {
                dropped.fetch_add(1 + lost, Ordering::Relaxed);
                if !failing {
                    display::warn(&format!(
                        "events: cannot write {}: {e}; events are dropped (and counted) until it \
                         works again",
                        path.display()
                    ));
                }
                failing = true;
            }
        }
    }
    let lost = dropped.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let line = format!("{{\"event\":\"dropped\",\"count\":{lost}}}\n");
        let _ = write_all_blocking(&mut out, line.as_bytes());
    }
}

/// `write_all`, waiting out EAGAIN (the log is opened non-blocking so that opening it never
/// hangs).
fn write_all_blocking(out: &mut dyn Write, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match out.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.flush()
}

/// `--alert-command`: `sh -c CMD` per refusal, in the background.
struct Alerts {
    command: Arc<str>,
    running: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// Process groups of the commands running now, killed whole at the end of the session.
    groups: Groups,
}

type Groups = Arc<std::sync::Mutex<std::collections::BTreeSet<i32>>>;

/// SIGKILL to process group `pgid`.
fn kill_group(pgid: i32) {
    // SAFETY: kill(2) of a process group a command of ours leads (process_group(0)).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

impl Alerts {
    fn new(command: String) -> Self {
        Self {
            command: command.into(),
            running: Arc::new(tokio::sync::Semaphore::new(ALERTS_RUNNING)),
            waiting: Arc::new(AtomicUsize::new(0)),
            groups: Groups::default(),
        }
    }

    fn run(&self, env: Vec<(&'static str, String)>) {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= ALERTS_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            display::warn("alert command: too many waiting to run; this refusal's is skipped");
            return;
        }
        let command = self.command.clone();
        let running = self.running.clone();
        let waiting = self.waiting.clone();
        let groups = self.groups.clone();
        tokio::spawn(async move {
            let permit = running.acquire_owned().await;
            run_alert(&command, env, &groups).await;
            drop(permit);
            waiting.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Waits until no command waits or runs, for at most `wait`; says how many did not finish.
    async fn wait(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        while self.waiting.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.waiting.load(Ordering::Relaxed);
        if let Ok(groups) = self.groups.lock() {
            groups.iter().copied().for_each(kill_group);
        }
        if left > 0 {
            display::warn(&format!(
                "alert command: {left} still running or waiting at the end of the session; \
                 stopped"
            ));
        }
    }
}

/// Runs `command` in a process group of its own, its output on our standard error (standard
/// output may be a JSON document); the whole group is killed after [`ALERT_TIMEOUT`].
async fn run_alert(command: &str, env: Vec<(&'static str, String)>, groups: &Groups) {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .envs(env)
        .process_group(0)
        .kill_on_drop(true);
    if let Ok(err) = std::io::stderr().as_fd().try_clone_to_owned() {
        cmd.stdout(std::process::Stdio::from(err));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            display::warn(&format!("alert command: cannot start /bin/sh: {e}"));
            return;
        }
    };
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    if let (Some(g), Ok(mut groups)) = (pgid, groups.lock()) {
        groups.insert(g);
    }
    let waited = tokio::time::timeout(ALERT_TIMEOUT, child.wait()).await;
    if let (Some(g), Ok(mut groups)) = (pgid, groups.lock()) {
        groups.remove(&g);
    }
    match waited {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => display::warn(&format!("alert command: {status}")),
        Ok(Err(e)) => display::warn(&format!("alert command: {e}")),
        Err(_) => {
            if let Some(g) = pgid {
                kill_group(g);
            }
            let _ = child.kill().await;
            display::warn(&format!(
                "alert command: still running after {}s; killed",
                ALERT_TIMEOUT.as_secs()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::activity::Activity;

    fn checkpoint() -> Activity {
        Activity::Checkpoint {
            targets: 1,
            ok: true,
            at_ns: 0,
        }
    }

    #[test]
    fn events_are_appended_to_a_new_file_or_one_of_ours_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        for _ in 0..2 {
            let w = EventWriter::open(&log).unwrap();
            w.send(checkpoint().to_json().to_string());
            w.close(DRAIN);
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| l.contains("\"event\":\"checkpoint\"")));

        let foreign = dir.path().join("passwd");
        std::fs::write(&foreign, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let err = EventWriter::open(&foreign).err().unwrap().to_string();
        assert!(err.contains("not an event log"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&foreign).unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );

        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&foreign, &link).unwrap();
        assert!(EventWriter::open(&link).is_err(), "never through a link");
        assert!(EventWriter::open(dir.path()).is_err(), "a directory");
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&log, &hard).unwrap();
        let err = EventWriter::open(&hard).err().unwrap().to_string();
        assert!(err.contains("other links"), "{err}");
        assert!(is_event_line(b"{\"event\":\"refusal\"}\n"));
        assert!(!is_event_line(b"{\"event\":\"refusal\"}\nhello\n"));
        assert!(
            is_event_line(b"{\"event\":\"refusal\"}\n{\"event\":\"ref"),
            "a last line cut short"
        );
        assert!(!is_event_line(b"{\"event\""), "no whole line");

        // A log whose last line a full disk cut short: appended to, on a line of its own.
        let cut = dir.path().join("cut.jsonl");
        std::fs::write(&cut, "{\"event\":\"checkpoint\"}\n{\"event\":\"che").unwrap();
        let w = EventWriter::open(&cut).unwrap();
        w.send("{\"event\":\"start\"}".into());
        w.close(DRAIN);
        let text = std::fs::read_to_string(&cut).unwrap();
        assert!(text.ends_with("\"che\n{\"event\":\"start\"}\n"), "{text:?}");
        #[cfg(target_os = "linux")]
        {
            let err = EventWriter::open(Path::new("/dev/null"))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, rx) = mpsc::sync_channel::<String>(1);
        let (_done_tx, done) = mpsc::channel();
        let w = EventWriter {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            done,
        };
        for _ in 0..10 {
            w.send("{}".into());
        }
        assert_eq!(w.dropped.load(Ordering::Relaxed), 9);
        drop(rx);
    }

    #[test]
    fn a_failing_writer_says_what_it_dropped_once_it_works() {
        struct Flaky(Arc<std::sync::Mutex<Vec<u8>>>, usize);
        impl Write for Flaky {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1 += 1;
                if self.1 == 1 {
                    return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
                }
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::sync_channel(4);
        tx.send("{\"event\":\"a\"}".to_string()).unwrap();
        tx.send("{\"event\":\"b\"}".to_string()).unwrap();
        drop(tx);
        let dropped = AtomicU64::new(0);
        write_lines(
            Box::new(Flaky(buf.clone(), 0)),
            rx,
            &dropped,
            Path::new("x"),
        );
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\"event\":\"dropped\",\"count\":1}\n{\"event\":\"b\"}\n"
        );
    }

    /// A command still running when the session ends is stopped, with what it started.
    #[tokio::test]
    async fn the_end_of_a_session_stops_running_commands_and_their_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let a = Alerts::new(cmd);
        a.run(Vec::new());
        let t0 = std::time::Instant::now();
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        a.wait(Duration::from_millis(200)).await;
        // The grandchild is gone (or a zombie of its own shell, which init reaps).
        let t0 = std::time::Instant::now();
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let gone =
                state.is_empty() || state.split(") ").nth(1).is_some_and(|s| s.starts_with('Z'));
            if gone {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "sleep {pid} still runs: {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_alert_command_gets_the_details_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("alert");
        let cmd = format!(
            "printf '%s %s' \"$SECCOMP_TRACER_SYSCALL\" \"$SECCOMP_TRACER_PROGRAM\" > {}",
            out.display()
        );
        let obs = Observers::open(None, Some(&cmd)).unwrap();
        obs.publish(&[
            checkpoint(),
            Activity::Refusal {
                call: crate::record::activity::Call {
                    target: "web".into(),
                    container_id: None,
                    name: "mbind".into(),
                    abi: "x86_64",
                    program: "$(touch pwned)".into(),
                    pid: 1,
                    at_ns: 0,
                },
                under: crate::record::activity::Under::OwnProfile,
                fix: "f".into(),
            },
        ]);
        obs.finish().await;
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "mbind $(touch pwned)"
        );
        assert!(!Path::new("pwned").exists());
    }
}
