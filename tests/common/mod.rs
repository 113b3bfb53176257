//! Harness for utcp's interop tests.
//!
//! Every test gets its own network namespace (`utcpt-<pid>-<counter>`) with a
//! TUN device created by `scripts/setup-tun.sh` (kernel side 10.77.0.1/24, the
//! utcp stack answers for 10.77.0.2). All traffic stays inside that namespace.
//! Processes started through [`Netns`] are killed (by PID) and the namespace is
//! deleted when the guards drop, also when a test panics. Every wait is
//! bounded.
//!
//! The tests need root, `/dev/net/tun`, iproute2 and netcat-openbsd. When those
//! are missing they FAIL with a message; they never skip.
//!
//! Helpers that are not about the kernel (byte patterns, comparing byte
//! strings, parsing packets) are in `utcp::testing`.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use utcp::testing::assert_same_bytes;

/// Kernel-side address of the TUN device.
pub const KERNEL_IP: &str = "10.77.0.1";
/// Address the utcp stack answers for.
pub const UTCP_IP: &str = "10.77.0.2";
/// TUN device name used inside every test namespace.
pub const DEV: &str = "utcp0";
/// The seed demo's message.
pub const SEED_MESSAGE: &str = "Hi, I am a client";
/// What a utcp listening command prints on stderr once it accepts.
pub const LISTENING: &str = "listening on";

/// How long to wait for a utcp listening command to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for short client commands (connect, send, close).
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for bulk transfers.
pub const BULK_TIMEOUT: Duration = Duration::from_secs(120);

/// Poll interval for all bounded waits.
const POLL: Duration = Duration::from_millis(20);
/// Cap on captured output per stream, so a chatty process cannot eat memory.
const CAPTURE_CAP: usize = 16 << 20;

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static STALE_CLEANUP: Once = Once::new();

/// Path of the utcp binary under test.
pub fn utcp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_utcp")
}

/// Repository root (where `scripts/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unique_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// How many packets of the capture `pcap` match the display filter
/// `filter`, as tshark (Debian's package) counts them.
pub fn tshark_count(pcap: &str, filter: &str) -> usize {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", pcap, "-Y", filter]);
    let (status, out, err) = run_bounded(cmd, SHORT_TIMEOUT);
    assert!(status.success(), "tshark -Y {filter}: {status}: {err}");
    out.lines().count()
}

/// Runs a command to completion with a bounded wait; returns (status, stdout,
/// stderr). Panics on spawn failure or timeout (the child is killed).
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {desc}: {e}"));
    let mut proc = Proc::from_child("cmd", child, Capture::Pipe);
    match proc.wait_timeout(timeout) {
        Some(status) => {
            proc.finish_readers();
            (status, proc.stdout_string(), proc.stderr_string())
        }
        None => panic!("{desc} did not finish within {timeout:?}\n{}", proc.log()),
    }
}

/// Deletes namespaces `utcpt-<pid>-*` left behind by test processes that no
/// longer exist (e.g. killed with SIGKILL). Never touches a live process.
fn cleanup_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    for entry in entries.flatten().take(1000) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("utcpt-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "delete", &name]);
            let _ = cmd.status();
        }
    }
}

/// What a TUN test says when it cannot run. Plain `cargo test` as a normal
/// user runs the sans-IO tests; these fail (never skip) with this message.
pub const NEEDS_ROOT: &str = "this test needs root and /dev/net/tun (it creates a network \
     namespace with a TUN device): run `sudo bash scripts/test.sh`; as a normal user, \
     `cargo test --workspace --no-fail-fast` runs the sans-IO tests";

/// Fails the test at once, with [`NEEDS_ROOT`], unless it runs as root on a
/// machine with `/dev/net/tun`.
pub fn require_root_and_tun() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "not root (euid {euid}): {NEEDS_ROOT}");
    assert!(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing (modprobe tun): {NEEDS_ROOT}"
    );
}

/// A network namespace with a TUN device inside, deleted on drop.
pub struct Netns {
    name: String,
    children: Mutex<Vec<Arc<Mutex<Child>>>>,
}

impl Netns {
    /// Creates `utcpt-<pid>-<counter>` with `utcp0` (10.77.0.1/24, mtu 1500).
    /// Panics (the test fails) if that is not possible.
    pub fn new() -> Netns {
        Self::with_mtu(1500)
    }

    pub fn with_mtu(mtu: u32) -> Netns {
        Self::with_setup(mtu, &[])
    }

    /// Like [`Netns::new`], with a multi-queue device (`utcp --queues N`).
    pub fn multi_queue() -> Netns {
        Self::with_setup(1500, &["--multi-queue"])
    }

    /// A namespace set up by `scripts/setup-tun.sh` with `extra` options.
    fn with_setup(mtu: u32, extra: &[&str]) -> Netns {
        require_root_and_tun();
        STALE_CLEANUP.call_once(cleanup_stale_namespaces);

        let name = format!("utcpt-{}", unique_suffix());
        // Construct the guard first so a half-created namespace is removed.
        let ns = Netns {
            name,
            children: Mutex::new(Vec::new()),
        };
        let script = repo_root().join("scripts/setup-tun.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .args(["--netns", &ns.name, "--dev", DEV])
            .args(["--addr", &format!("{KERNEL_IP}/24")])
            .args(["--mtu", &mtu.to_string()])
            .args(extra);
        let (status, stdout, stderr) = run_bounded(cmd, Duration::from_secs(30));
        assert!(
            status.success(),
            "could not create network namespace {} with TUN device {DEV} via {}: {status}\n\
             stdout: {stdout}\nstderr: {stderr}",
            ns.name,
            script.display()
        );
        ns
    }

    /// A namespace with only `lo` (up) in it: for topologies of several
    /// namespaces such as [`ForwardTopology`].
    pub fn bare(role: &str) -> Netns {
        require_root_and_tun();
        STALE_CLEANUP.call_once(cleanup_stale_namespaces);
        let ns = Netns {
            name: format!("utcpt-{}-{role}", unique_suffix()),
            children: Mutex::new(Vec::new()),
        };
        ip(&["netns", "add", &ns.name]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME args...`; panics (the test fails) if it fails.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program` (arguments to be added by the caller).
    /// The `ip` process execs the program directly, so the child's PID is the
    /// program's PID.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// A `utcp` command inside the namespace. RUST_LOG defaults to `info`
    /// unless already set in the environment.
    pub fn utcp_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(utcp_bin());
        cmd.args(args);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd
    }

    /// Spawns `cmd` (usually from [`Netns::command`]); stderr is always
    /// captured. The returned guard kills the child on drop; the namespace
    /// guard also kills it when the namespace is dropped.
    pub fn spawn(&self, label: &str, mut cmd: Command, stdin: Stdio, stdout: Capture) -> Proc {
        cmd.stdin(stdin).stderr(Stdio::piped());
        match &stdout {
            Capture::Pipe => {
                cmd.stdout(Stdio::piped());
            }
            Capture::Null => {
                cmd.stdout(Stdio::null());
            }
            Capture::File(path) => {
                let f = File::create(path)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
                cmd.stdout(f);
            }
        }
        let desc = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("[{label}] could not spawn {desc}: {e}"));
        let proc = Proc::from_child(label, child, stdout);
        self.children.lock().unwrap().push(proc.child.clone());
        proc
    }

    /// Spawns `utcp <args>` in the namespace.
    pub fn spawn_utcp(&self, label: &str, args: &[&str], stdin: Stdio, stdout: Capture) -> Proc {
        self.spawn(label, self.utcp_command(args), stdin, stdout)
    }

    /// Spawns a listening `utcp <args>` and waits (bounded) for its
    /// `listening on` line on stderr. Panics with its log if it does not come.
    pub fn spawn_utcp_listening(
        &self,
        label: &str,
        args: &[&str],
        stdin: Stdio,
        stdout: Capture,
    ) -> Proc {
        let proc = self.spawn_utcp(label, args, stdin, stdout);
        if let Err(e) = proc.wait_for_stderr(LISTENING, READY_TIMEOUT) {
            panic!("utcp {args:?} never became ready: {e}\n{}", proc.log());
        }
        proc
    }

    /// Runs a program in the namespace to completion (bounded), feeding it
    /// `input` on stdin. Panics if it does not finish in time.
    pub fn run(
        &self,
        label: &str,
        program: &str,
        args: &[&str],
        input: &[u8],
        timeout: Duration,
    ) -> RunResult {
        let mut cmd = self.command(program);
        cmd.args(args);
        self.run_cmd(label, cmd, input, timeout)
    }

    /// Like [`Netns::run`] for an already built command.
    pub fn run_cmd(&self, label: &str, cmd: Command, input: &[u8], timeout: Duration) -> RunResult {
        let mut proc = self.spawn(label, cmd, Stdio::piped(), Capture::Pipe);
        let stdin = proc.take_stdin();
        let input = input.to_vec();
        let writer = thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                // The child may exit without reading everything; ignore EPIPE.
                let _ = stdin.write_all(&input);
            }
        });
        let status = match proc.wait_timeout(timeout) {
            Some(s) => s,
            None => panic!(
                "[{label}] did not finish within {timeout:?}\n{}",
                proc.log()
            ),
        };
        let _ = writer.join();
        proc.finish_readers();
        RunResult {
            status,
            stdout: proc.stdout_bytes(),
            stderr: proc.stderr_string(),
        }
    }

    /// Waits (bounded) until a kernel TCP socket listens on `port` in this
    /// namespace.
    pub fn wait_for_kernel_listen(&self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let sockets = self.kernel_tcp_sockets();
            if sockets
                .iter()
                .any(|s| s.state == "LISTEN" && s.local.ends_with(&format!(":{port}")))
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "nothing listens on TCP port {port} in {} after {timeout:?}: {sockets:?}",
                    self.name
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The kernel's TCP sockets in this namespace (`ss -Htan`).
    pub fn kernel_tcp_sockets(&self) -> Vec<SockInfo> {
        let mut cmd = self.command("ss");
        cmd.arg("-Htan");
        let (status, stdout, stderr) = run_bounded(cmd, Duration::from_secs(10));
        assert!(status.success(), "ss failed in {}: {stderr}", self.name);
        stdout
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 5 {
                    return None;
                }
                Some(SockInfo {
                    state: f[0].to_string(),
                    local: f[3].to_string(),
                    peer: f[4].to_string(),
                })
            })
            .collect()
    }

    /// Spawns a thread that first enters this namespace; std::net sockets it
    /// creates live in the namespace.
    pub fn spawn_thread<T, F>(&self, f: F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let name = self.name.clone();
        thread::spawn(move || {
            enter_netns(&name);
            f()
        })
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|e| e.into_inner()));
        for child in children {
            let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "delete", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not delete namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: could not run ip netns delete {}: {e}", self.name),
        }
    }
}

/// One line of `ss -tan`.
#[derive(Debug, Clone)]
pub struct SockInfo {
    pub state: String,
    pub local: String,
    pub peer: String,
}

/// Moves the calling thread into the named network namespace. Only call this
/// on a thread created for that purpose.
pub fn enter_netns(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let f = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    // SAFETY: f is an open namespace file descriptor; setns only changes the
    // calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns({path}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Runs `f` on a fresh thread inside the namespace and returns its result
/// (bounded by [`BULK_TIMEOUT`]; a panic in `f` is propagated).
pub fn run_in_netns<T, F>(ns: &Netns, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    join_bounded(ns.spawn_thread(f), BULK_TIMEOUT, "run_in_netns closure")
}

/// Joins a thread, panicking if it does not finish within `timeout` (the thread
/// is then left behind; its sockets have their own timeouts).
pub fn join_bounded<T>(handle: JoinHandle<T>, timeout: Duration, what: &str) -> T {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            panic!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(POLL);
    }
    match handle.join() {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// Where a spawned process's stdout goes.
pub enum Capture {
    /// Collected in memory (see [`Proc::stdout_bytes`]).
    Pipe,
    /// Discarded.
    Null,
    /// Written to this file.
    File(PathBuf),
}

/// Result of [`Netns::run`].
#[derive(Debug)]
pub struct RunResult {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl RunResult {
    pub fn stdout_string(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

type Buf = Arc<Mutex<Vec<u8>>>;

fn spawn_reader<R: Read + Send + 'static>(mut r: R, buf: Buf) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                    let room = CAPTURE_CAP.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

/// A spawned child process. Killed (by PID, via its `Child` handle) on drop.
/// stderr (and stdout with [`Capture::Pipe`]) are collected by reader threads
/// so they can be inspected while it runs and printed when a test fails.
pub struct Proc {
    label: String,
    pid: u32,
    child: Arc<Mutex<Child>>,
    stdout: Buf,
    stderr: Buf,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Proc {
    fn from_child(label: &str, mut child: Child, stdout_mode: Capture) -> Proc {
        let stdout: Buf = Arc::default();
        let stderr: Buf = Arc::default();
        let mut readers = Vec::new();
        if let Some(err) = child.stderr.take() {
            readers.push(spawn_reader(err, stderr.clone()));
        }
        if let Capture::Pipe = stdout_mode {
            if let Some(out) = child.stdout.take() {
                readers.push(spawn_reader(out, stdout.clone()));
            }
        }
        Proc {
            label: label.to_string(),
            pid: child.id(),
            child: Arc::new(Mutex::new(child)),
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes the child's stdin pipe (if it was spawned with `Stdio::piped()`).
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.lock().unwrap().stdin.take()
    }

    /// Exit status if the process has exited (non-blocking).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.lock().unwrap().try_wait().ok().flatten();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` for the exit status, panicking with the log when
    /// the process is still running then.
    pub fn wait_or_panic(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(s) => {
                self.finish_readers();
                s
            }
            None => panic!(
                "[{}] (pid {}) still running after {timeout:?}\n{}",
                self.label,
                self.pid,
                self.log()
            ),
        }
    }

    /// Kills the process (SIGKILL) if it still runs and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        if let Ok(s) = child.wait() {
            self.status.get_or_insert(s);
        }
    }

    /// After the process exited: waits (bounded) for the reader threads to
    /// drain the pipes, so the captured output is complete.
    pub fn finish_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.readers)
            .into_iter()
            .partition(|r| r.is_finished());
        for r in done {
            let _ = r.join();
        }
        self.readers = pending;
    }

    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stdout_string(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr_string(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn wait_for(
        &self,
        buf: &Buf,
        which: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&buf.lock().unwrap()).contains(needle) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                // Give the reader a moment to collect the last output.
                thread::sleep(Duration::from_millis(100));
                if String::from_utf8_lossy(&buf.lock().unwrap()).contains(needle) {
                    return Ok(());
                }
                return Err(format!(
                    "[{}] exited ({status}) before printing {needle:?} on {which}",
                    self.label
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "[{}] did not print {needle:?} on {which} within {timeout:?}",
                    self.label
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// Waits (bounded) until captured stderr contains `needle`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        self.wait_for(&self.stderr, "stderr", needle, timeout)
    }

    /// Waits (bounded) until captured stdout contains `needle`.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        self.wait_for(&self.stdout, "stdout", needle, timeout)
    }

    /// Human-readable dump of what was captured, for failure messages.
    pub fn log(&self) -> String {
        let tail = |s: String| {
            const MAX: usize = 16 * 1024;
            if s.len() > MAX {
                let mut cut = s.len() - MAX;
                while !s.is_char_boundary(cut) {
                    cut += 1;
                }
                format!("...[{} bytes cut]...\n{}", cut, &s[cut..])
            } else {
                s
            }
        };
        format!(
            "----- [{}] pid {} stderr -----\n{}\n----- [{}] stdout -----\n{}\n-----",
            self.label,
            self.pid,
            tail(self.stderr_string()),
            self.label,
            tail(self.stdout_string())
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        self.finish_readers();
    }
}

/// A file in the temp dir with a unique name, removed on drop.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    pub fn new(label: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("utcp-test-{}-{label}", unique_suffix()));
        TempFile { path }
    }

    pub fn with_contents(label: &str, data: &[u8]) -> TempFile {
        let f = TempFile::new(label);
        std::fs::write(&f.path, data)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", f.path.display()));
        f
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self) -> Vec<u8> {
        std::fs::read(&self.path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.path.display()))
    }

    /// Opens the file for use as a child's stdin.
    pub fn as_stdin(&self) -> Stdio {
        Stdio::from(
            File::open(&self.path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.path.display())),
        )
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Helpers for the loss tests (tests/interop_loss.rs).
// ---------------------------------------------------------------------------

/// One `counter` of an nftables rule: the chain it is in and what it counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftCounter {
    pub chain: String,
    pub packets: u64,
    pub bytes: u64,
}

impl Netns {
    /// Loads an nftables ruleset (`nft -f -`) into this namespace. Panics with
    /// nft's message if it is rejected (e.g. nftables is not installed).
    pub fn nft_apply(&self, ruleset: &str) {
        let r = self.run(
            "nft -f -",
            "nft",
            &["-f", "-"],
            ruleset.as_bytes(),
            Duration::from_secs(10),
        );
        assert!(
            r.status.success(),
            "nft rejected the ruleset in {} ({}): {}\nruleset:\n{ruleset}\n\
             (the loss tests need nftables: apt-get install nftables)",
            self.name,
            r.status,
            r.stderr
        );
    }

    /// The rule counters of table `family name` (e.g. `inet utcptest`), in
    /// the order `nft list table` prints them.
    pub fn nft_counters(&self, family: &str, table: &str) -> Vec<NftCounter> {
        let r = self.run(
            "nft list table",
            "nft",
            &["list", "table", family, table],
            b"",
            Duration::from_secs(10),
        );
        assert!(
            r.status.success(),
            "nft list table {family} {table} failed in {}: {}",
            self.name,
            r.stderr
        );
        parse_nft_counters(&r.stdout_string())
    }

    /// Sets `gso_max_segs` of the TUN device in this namespace. With 1 the
    /// kernel's TCP hands the IP layer one MSS-sized segment per packet, so
    /// netfilter hooks see (and can drop) single wire packets instead of GSO
    /// super-packets of up to 64 KiB.
    pub fn set_gso_max_segs(&self, segs: u32) {
        let r = self.run(
            "ip link set gso_max_segs",
            "ip",
            &["link", "set", DEV, "gso_max_segs", &segs.to_string()],
            b"",
            Duration::from_secs(10),
        );
        assert!(
            r.status.success(),
            "could not set gso_max_segs {segs} on {DEV} in {}: {}",
            self.name,
            r.stderr
        );
    }

    /// A counter of the TUN device in this namespace, from
    /// /sys/class/net/DEV/statistics (`rx_packets`: packets utcp wrote,
    /// one per write even for a super-segment; `tx_packets`: packets the
    /// kernel handed utcp).
    pub fn device_counter(&self, counter: &str) -> u64 {
        let path = format!("/sys/class/net/{DEV}/statistics/{counter}");
        let r = self.run("cat", "cat", &[&path], b"", Duration::from_secs(10));
        let text = r.stdout_string();
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path} in {}: {e}: {text:?} {}", self.name, r.stderr))
    }

    /// Like [`Netns::spawn`], but hands the child's stdout pipe to the caller
    /// (instead of collecting it), so a test can read it at its own pace.
    /// stderr is captured as usual; the process is killed when the guard or
    /// the namespace drops.
    pub fn spawn_with_stdout_pipe(
        &self,
        label: &str,
        mut cmd: Command,
        stdin: Stdio,
    ) -> (Proc, std::process::ChildStdout) {
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let desc = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("[{label}] could not spawn {desc}: {e}"));
        let stdout = child.stdout.take().expect("stdout was piped");
        let proc = Proc::from_child(label, child, Capture::Null);
        self.children.lock().unwrap().push(proc.child.clone());
        (proc, stdout)
    }
}

/// Parses the `counter packets N bytes M` entries of `nft list` output.
pub fn parse_nft_counters(listing: &str) -> Vec<NftCounter> {
    let mut chain = String::new();
    let mut out = Vec::new();
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"chain") && words.len() >= 2 {
            chain = words[1].to_string();
            continue;
        }
        if let Some(i) = words.iter().position(|w| *w == "counter") {
            let num = |key: &str| {
                words[i..]
                    .windows(2)
                    .find(|w| w[0] == key)
                    .and_then(|w| w[1].parse::<u64>().ok())
            };
            if let (Some(packets), Some(bytes)) = (num("packets"), num("bytes")) {
                out.push(NftCounter {
                    chain: chain.clone(),
                    packets,
                    bytes,
                });
            }
        }
    }
    out
}

/// Resident set size of process `pid` in KiB (`VmRSS` of /proc/PID/status),
/// None if the process is gone.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The command name of process `pid` (/proc/PID/comm), None if it is gone.
pub fn proc_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// What utcp's `--impair` summary line on stderr says
/// (`utcp: impairment: dropped X in / Y out, duplicated A / B, reordered C / D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImpairSummary {
    pub dropped: [u64; 2],
    pub duplicated: [u64; 2],
    pub reordered: [u64; 2],
}

/// Finds and parses utcp's impairment summary line in `stderr`.
pub fn parse_impair_summary(stderr: &str) -> Option<ImpairSummary> {
    let line = stderr
        .lines()
        .find_map(|l| l.split("utcp: impairment: ").nth(1))?;
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    if nums.len() != 6 {
        return None;
    }
    Some(ImpairSummary {
        dropped: [nums[0], nums[1]],
        duplicated: [nums[2], nums[3]],
        reordered: [nums[4], nums[5]],
    })
}

// ---------------------------------------------------------------------------
// Helpers for the socket API tests (tests/api.rs).
// ---------------------------------------------------------------------------

/// (device, inode) of a network namespace file.
fn netns_id(path: &str) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("cannot stat {path}: {e}"));
    (m.dev(), m.ino())
}

/// Panics unless the calling thread is inside the namespace `name`. Guards
/// against creating sockets (or a utcp stack) in the root namespace.
pub fn assert_in_netns(name: &str) {
    let want = netns_id(&format!("/var/run/netns/{name}"));
    let have = netns_id("/proc/thread-self/ns/net");
    assert_eq!(
        have, want,
        "this thread is not in network namespace {name}; refusing to create sockets here"
    );
}

/// Handed to closures run by [`Netns::with_utcp`]: spawns more threads
/// inside the same namespace.
#[derive(Clone, Debug)]
pub struct NsCtx {
    name: String,
}

impl NsCtx {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Spawns a thread that explicitly enters (and checks) the namespace
    /// before running `f`.
    pub fn spawn<T, F>(&self, f: F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let name = self.name.clone();
        thread::spawn(move || {
            enter_netns(&name);
            assert_in_netns(&name);
            f()
        })
    }
}

impl Netns {
    /// Runs `f` on a fresh thread inside this namespace with a utcp
    /// [`utcp::socket::NetStack`] attached to the namespace's TUN device
    /// (answering for [`UTCP_IP`], configured by `tweak`). The stack is
    /// created on that thread, after checking the namespace. The closure
    /// owns the stack; dropping it (at the latest when `f` returns) lingers
    /// for closing connections. Bounded by `timeout`; panics in `f` are
    /// propagated.
    pub fn with_utcp_config<T, F>(
        &self,
        timeout: Duration,
        tweak: impl FnOnce(&mut utcp::stack::StackConfig) + Send + 'static,
        f: F,
    ) -> T
    where
        T: Send + 'static,
        F: FnOnce(utcp::socket::NetStack, NsCtx) -> T + Send + 'static,
    {
        let ctx = NsCtx {
            name: self.name.clone(),
        };
        utcp::testing::init_logger();
        let handle = self.spawn_thread(move || {
            assert_in_netns(&ctx.name);
            let mut cfg = utcp::stack::StackConfig::new(UTCP_IP.parse().unwrap());
            tweak(&mut cfg);
            let opts = utcp::socket::RuntimeOptions {
                driver: test_driver(),
                ..Default::default()
            };
            let net = utcp::socket::NetStack::tun_with_options(DEV, cfg, opts)
                .unwrap_or_else(|e| panic!("cannot attach a utcp stack to {DEV}: {e}"));
            f(net, ctx)
        });
        join_bounded(handle, timeout, "utcp test closure")
    }

    /// A handle for helpers that check they run inside this namespace.
    pub fn ctx(&self) -> NsCtx {
        NsCtx {
            name: self.name.clone(),
        }
    }

    /// [`Netns::with_utcp_config`] with the default configuration.
    pub fn with_utcp<T, F>(&self, timeout: Duration, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(utcp::socket::NetStack, NsCtx) -> T + Send + 'static,
    {
        self.with_utcp_config(timeout, |_| {}, f)
    }
}

/// Who drives the stacks of [`Netns::with_utcp_config`]: `UTCP_TEST_DRIVER`
/// (`thread` or `inline`; scripts/test.sh runs the api tests with each),
/// the library's default when unset. A bad value fails the test.
pub fn test_driver() -> utcp::socket::Driver {
    match std::env::var("UTCP_TEST_DRIVER") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("UTCP_TEST_DRIVER: {e}")),
        Err(_) => utcp::socket::Driver::default(),
    }
}

/// Sets SO_LINGER {on, 0} on a kernel socket, so closing it sends a RST.
pub fn set_linger_zero(fd: std::os::fd::RawFd) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is an open socket; we pass a valid linger struct and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER) failed: {}",
        std::io::Error::last_os_error()
    );
}

// ----------------------------------------------------------------------
// Bulk transfers through the utcp binary and the kernel's nc
// ----------------------------------------------------------------------

/// Upper bound per transfer direction (generous: 20 MB utcp->kernel under
/// 5% loss took 76-95 s before SACK recovery, 4-7 s after).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(240);

/// Throughput in MB/s (10^6 bytes).
pub fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

/// Current size of a temp file (0 if unreadable).
pub fn file_len(f: &TempFile) -> u64 {
    std::fs::metadata(f.path()).map(|m| m.len()).unwrap_or(0)
}

/// The utcp arguments: the global options (`--impair SPEC`, `--cc cubic`, ...) before the subcommand.
pub fn utcp_args<'a>(global: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = global.to_vec();
    args.extend_from_slice(command);
    args
}

/// Outcome of one bulk transfer.
pub struct Transfer {
    /// Wall-clock time of the transfer.
    pub elapsed: Duration,
    /// What utcp printed on stderr.
    pub utcp_stderr: String,
}

/// `nc -N UTCP_IP port < data` into `utcp [--impair SPEC] listen --port port`;
/// asserts both exit successfully and utcp wrote exactly `data` to stdout.
pub fn kernel_to_utcp(ns: &Netns, what: &str, data: &[u8], port: u16, global: &[&str]) -> Transfer {
    let input = TempFile::with_contents("loss-k2u-in", data);
    let output = TempFile::new("loss-k2u-out");
    let port_s = port.to_string();
    // stdin /dev/null: utcp half-closes its sending side at once; the data
    // flows kernel -> utcp.
    let mut listener = ns.spawn_utcp_listening(
        "utcp listen",
        &utcp_args(global, &["listen", "--port", &port_s]),
        Stdio::null(),
        Capture::File(output.path().to_path_buf()),
    );
    let start = Instant::now();
    let mut nc_cmd = ns.command("nc");
    nc_cmd.args(["-N", UTCP_IP, &port_s]);
    let mut nc = ns.spawn("nc -N", nc_cmd, input.as_stdin(), Capture::Pipe);

    let deadline = start + TRANSFER_TIMEOUT;
    let utcp_status = match listener.wait_timeout(TRANSFER_TIMEOUT) {
        Some(s) => s,
        None => panic!(
            "{what}: utcp listen did not finish within {TRANSFER_TIMEOUT:?} \
             ({} of {} bytes arrived)\n{}\n{}",
            file_len(&output),
            data.len(),
            listener.log(),
            nc.log()
        ),
    };
    let elapsed = start.elapsed();
    let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(10);
    let nc_status = nc.wait_or_panic(left);
    listener.finish_readers();
    eprintln!(
        "{what}: {} bytes kernel->utcp in {:.2} s ({:.1} MB/s)",
        data.len(),
        elapsed.as_secs_f64(),
        mb_per_s(data.len(), elapsed)
    );
    assert!(
        utcp_status.success(),
        "{what}: utcp listen exited with {utcp_status}\n{}",
        listener.log()
    );
    assert!(
        nc_status.success(),
        "{what}: nc -N exited with {nc_status}\n{}",
        nc.log()
    );
    assert_same_bytes(&format!("{what} (kernel->utcp)"), data, &output.read());
    Transfer {
        elapsed,
        utcp_stderr: listener.stderr_string(),
    }
}

/// `utcp [--impair SPEC] connect KERNEL_IP:port < data` into
/// `nc -l KERNEL_IP port`; asserts both exit successfully and nc wrote exactly
/// `data`.
pub fn utcp_to_kernel(ns: &Netns, what: &str, data: &[u8], port: u16, global: &[&str]) -> Transfer {
    let input = TempFile::with_contents("loss-u2k-in", data);
    let output = TempFile::new("loss-u2k-out");
    let port_s = port.to_string();
    // netcat-openbsd as listener with stdin at EOF: it sends nothing and exits
    // once utcp's FIN arrived and everything was written out.
    let mut nc_cmd = ns.command("nc");
    nc_cmd.args(["-l", KERNEL_IP, &port_s]);
    let mut nc = ns.spawn(
        "nc -l",
        nc_cmd,
        Stdio::null(),
        Capture::File(output.path().to_path_buf()),
    );
    ns.wait_for_kernel_listen(port, Duration::from_secs(10));

    let start = Instant::now();
    let target = format!("{KERNEL_IP}:{port}");
    let mut client = ns.spawn_utcp(
        "utcp connect",
        &utcp_args(global, &["connect", &target]),
        input.as_stdin(),
        Capture::Pipe,
    );
    let utcp_status = match client.wait_timeout(TRANSFER_TIMEOUT) {
        Some(s) => s,
        None => panic!(
            "{what}: utcp connect did not finish within {TRANSFER_TIMEOUT:?} \
             ({} of {} bytes arrived)\n{}\n{}",
            file_len(&output),
            data.len(),
            client.log(),
            nc.log()
        ),
    };
    let nc_status = nc.wait_or_panic(Duration::from_secs(10));
    let elapsed = start.elapsed();
    client.finish_readers();
    eprintln!(
        "{what}: {} bytes utcp->kernel in {:.2} s ({:.1} MB/s)",
        data.len(),
        elapsed.as_secs_f64(),
        mb_per_s(data.len(), elapsed)
    );
    assert!(
        utcp_status.success(),
        "{what}: utcp connect exited with {utcp_status}\n{}",
        client.log()
    );
    assert!(
        nc_status.success(),
        "{what}: nc -l exited with {nc_status}\n{}",
        nc.log()
    );
    assert_same_bytes(&format!("{what} (utcp->kernel)"), data, &output.read());
    Transfer {
        elapsed,
        utcp_stderr: client.stderr_string(),
    }
}

// ----------------------------------------------------------------------
// Scenarios shared by the interop files (plain and --offload)
// ----------------------------------------------------------------------

/// The seed demo: the kernel's `nc` sends the seed message to `utcp
/// [GLOBAL...] server`, which prints exactly that line.
pub fn seed_message_to_utcp_server(ns: &Netns, global: &[&str]) {
    let args: Vec<&str> = global
        .iter()
        .copied()
        .chain(["server", "--port", "4399"])
        .collect();
    let server = ns.spawn_utcp_listening(
        "utcp server",
        &args,
        std::process::Stdio::null(),
        Capture::Pipe,
    );
    let nc = ns.run(
        "nc",
        "nc",
        &["-N", "-w", "5", UTCP_IP, "4399"],
        SEED_MESSAGE.as_bytes(),
        SHORT_TIMEOUT,
    );
    assert!(
        nc.status.success(),
        "nc -> utcp server failed ({}): {}\n{}",
        nc.status,
        nc.stderr,
        server.log()
    );
    if let Err(e) = server.wait_for_stdout(&format!("{SEED_MESSAGE}\n"), Duration::from_secs(10)) {
        panic!("{e}\n{}", server.log());
    }
    let out = server.stdout_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![SEED_MESSAGE],
        "utcp server should print exactly one line with the message\n{}",
        server.log()
    );
}

/// `conns` kernel clients at once, each sending `len` bytes to `utcp
/// [GLOBAL...] echo` and reading them back byte-exact.
pub fn concurrent_echo(ns: &Netns, conns: usize, len: usize, global: &[&str]) {
    let args: Vec<&str> = global
        .iter()
        .copied()
        .chain(["echo", "--port", "7"])
        .collect();
    let mut echo = ns.spawn_utcp_listening(
        "utcp echo",
        &args,
        std::process::Stdio::null(),
        Capture::Pipe,
    );
    let server: std::net::SocketAddr = (UTCP_IP.parse::<std::net::Ipv4Addr>().unwrap(), 7).into();

    let handles: Vec<_> = (0..conns)
        .map(|i| {
            ns.spawn_thread(move || -> Result<(), String> {
                let mut payload = utcp::testing::random_bytes(len, 1000 + i as u64);
                payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let mut s = std::net::TcpStream::connect_timeout(&server, SHORT_TIMEOUT)
                    .map_err(|e| format!("conn {i}: connect: {e}"))?;
                s.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(SHORT_TIMEOUT)).unwrap();
                s.write_all(&payload)
                    .map_err(|e| format!("conn {i}: write: {e}"))?;
                s.shutdown(std::net::Shutdown::Write)
                    .map_err(|e| format!("conn {i}: shutdown: {e}"))?;
                let mut back = Vec::with_capacity(len);
                s.read_to_end(&mut back)
                    .map_err(|e| format!("conn {i}: read: {e} (got {} bytes)", back.len()))?;
                if back != payload {
                    return Err(format!(
                        "conn {i}: echo differs: sent {} bytes, got {}",
                        payload.len(),
                        back.len()
                    ));
                }
                Ok(())
            })
        })
        .collect();

    let start = Instant::now();
    let mut errors = Vec::new();
    for h in handles {
        let left = BULK_TIMEOUT.saturating_sub(start.elapsed());
        if let Err(e) = join_bounded(h, left, "echo client thread") {
            errors.push(e);
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {conns} connections failed:\n{}\n{}",
        errors.len(),
        errors.join("\n"),
        echo.log()
    );
    assert!(echo.is_running(), "utcp echo exited\n{}", echo.log());
}

/// The kernel-side loss rules: 5% of the TCP packets through the TUN device
/// dropped in each direction, each rule with a counter.
pub const NFT_LOSS_RULES: &str = r#"
table inet utcptest {
    chain from_utcp {
        type filter hook input priority 0; policy accept;
        iifname "utcp0" meta l4proto tcp numgen random mod 100 < 5 counter drop
    }
    chain to_utcp {
        type filter hook output priority 0; policy accept;
        oifname "utcp0" meta l4proto tcp numgen random mod 100 < 5 counter drop
    }
}
"#;

/// `ip args...`, bounded; panics (the test fails) if it fails.
pub fn ip(args: &[&str]) {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    let (status, _, err) = run_bounded(cmd, Duration::from_secs(10));
    assert!(status.success(), "ip {args:?}: {status}: {err}");
}

/// What `utcp forward` prints once it relays.
pub const FORWARDING: &str = "forwarding every TCP connection";

/// The topology `utcp forward` is built for (docs/forward.md), in three
/// namespaces of the test's own: `app` holds the TUN device (10.77.0.1/24,
/// default route into it) and the clients; `relay` runs `utcp forward`,
/// which opened the device before it was moved to `app`; `servers` is
/// behind a veth pair (relay 10.98.0.1, servers 10.98.0.2) with
/// [`SERVER_IPS`] on its `lo`, routed by the relay.
pub struct ForwardTopology {
    pub app: Netns,
    pub relay: Netns,
    pub servers: Netns,
    /// The `utcp forward` process (in `relay`).
    pub forward: Proc,
}

/// The servers' addresses, besides 10.98.0.2 on the veth.
pub const SERVER_IPS: [&str; 3] = ["10.98.1.1", "10.98.1.2", "10.98.2.7"];

impl ForwardTopology {
    /// Builds the three namespaces and starts `utcp forward <args>`.
    pub fn new(forward_args: &[&str]) -> ForwardTopology {
        let (app, relay, servers) = (Netns::bare("app"), Netns::bare("relay"), Netns::bare("srv"));
        relay.ip(&[
            "link",
            "add",
            "fwd-r",
            "type",
            "veth",
            "peer",
            "name",
            "fwd-s",
            "netns",
            servers.name(),
        ]);
        relay.ip(&["addr", "add", "10.98.0.1/24", "dev", "fwd-r"]);
        relay.ip(&["link", "set", "fwd-r", "up"]);
        servers.ip(&["addr", "add", "10.98.0.2/24", "dev", "fwd-s"]);
        servers.ip(&["link", "set", "fwd-s", "up"]);
        for a in SERVER_IPS {
            servers.ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        relay.ip(&["route", "add", "10.98.1.0/24", "via", "10.98.0.2"]);
        relay.ip(&["route", "add", "10.98.2.0/24", "via", "10.98.0.2"]);
        relay.ip(&["tuntap", "add", "dev", DEV, "mode", "tun"]);
        let mut args = vec!["--dev", DEV, "forward"];
        args.extend_from_slice(forward_args);
        let forward = relay.spawn_utcp("forward", &args, Stdio::null(), Capture::Pipe);
        if let Err(e) = forward.wait_for_stderr(FORWARDING, READY_TIMEOUT) {
            panic!("utcp forward never became ready: {e}\n{}", forward.log());
        }
        relay.ip(&["link", "set", DEV, "netns", app.name()]);
        app.ip(&["addr", "add", &format!("{KERNEL_IP}/24"), "dev", DEV]);
        app.ip(&["link", "set", DEV, "up"]);
        app.ip(&["route", "add", "default", "dev", DEV]);
        ForwardTopology {
            app,
            relay,
            servers,
            forward,
        }
    }

    /// Stops `utcp forward` with SIGTERM; returns its stderr (relay lines
    /// and the counters line, `utcp: forward: ...`).
    pub fn stop(&mut self) -> String {
        // SAFETY: kill on the PID of a child we started and have not reaped.
        unsafe { libc::kill(self.forward.pid() as libc::pid_t, libc::SIGTERM) };
        let status = self.forward.wait_or_panic(SHORT_TIMEOUT);
        self.forward.finish_readers();
        let log = self.forward.stderr_string();
        assert!(status.success(), "utcp forward: {status}\n{log}");
        log
    }
}
