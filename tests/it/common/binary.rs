//! The real `qstash` binary as a child process: spawned with chosen flags and environment,
//! its output collected, killed when dropped. For the tests that need the process itself
//! (flags, signals, crashes, resource limits) rather than an in-process server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qstash::users::USERS;

const BIN: &str = env!("CARGO_BIN_EXE_qstash");

/// The binary under test: this build's, or `QSTASH_TEST_BIN` (to check that a test fails
/// against an older build).
pub fn bin() -> String {
    std::env::var("QSTASH_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}
/// Every wait on the process is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A `qstash` process whose output is collected as it comes; killed when dropped, so a
/// failing test leaves nothing behind.
pub struct Dev {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Closed (disconnected) once stderr reached its end.
    stderr_done: mpsc::Receiver<()>,
    pub stdout: Vec<String>,
    pub stderr: Arc<Mutex<String>>,
}

impl Dev {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_command(Command::new(bin()).args(args), env)
    }

    /// Spawns with the open-files limit (soft and hard) set to `fds`, as `ulimit -n` does.
    pub fn spawn_with_fd_limit(fds: u32, args: &[&str], env: &[(&str, &str)]) -> Self {
        let script = format!("ulimit -n {fds} && exec \"$0\" \"$@\"");
        let mut command = Command::new("sh");
        command.arg("-c").arg(script).arg(bin()).args(args);
        Self::spawn_command(&mut command, env)
    }

    fn spawn_command(command: &mut Command, env: &[(&str, &str)]) -> Self {
        let mut child = command
            .env_remove("QSTASH_DEV_PORT")
            .env_remove("QSTASH_DEV_QUOTA")
            .env_remove("QSTASH_DEV_CLOCK_CONTROL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qstash");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let (done, stderr_done) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _done = done;
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            lines,
            stderr_done,
            stdout: Vec::new(),
            stderr,
        }
    }

    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Reads stdout until a line satisfies `pred`; returns it.
    pub fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no {what} line ({e:?}); {}", self.output()),
            }
        }
    }

    /// Waits for the readiness line and returns the port of the printed `QSTASH_URL`.
    pub fn wait_ready(&mut self) -> u16 {
        self.wait_line("readiness", is_ready_line);
        let url = self.wait_line("QSTASH_URL", |l| l.starts_with("QSTASH_URL="));
        url.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"))
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Collect what is left of stdout.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.stdout.push(line);
                }
                // And of stderr: the process is gone, but its reader may not have read
                // the last bytes yet (a one-line error raced the assertion on it).
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(2));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}; {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JS SDK's readiness test: `/runn+ing( at|\.)/i`.
pub fn is_ready_line(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.match_indices("runn").any(|(i, _)| {
        let rest = lower[i + 4..].trim_start_matches('n');
        rest.strip_prefix("ing")
            .is_some_and(|r| r.starts_with(" at") || r.starts_with('.'))
    })
}

pub use super::free_port;

/// A minimal HTTP/1.1 request as user `user`; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, user: usize, headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n",
        USERS[user].token
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Accepts one connection, waiting at most `within`.
pub fn accept_within(listener: &std::net::TcpListener, within: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "nothing connected within {within:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// A started `qstash dev -port 0` (plus `args`) and its base URL.
pub struct Started {
    pub dev: Dev,
    pub url: String,
    pub port: u16,
}

impl Started {
    pub fn new(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::with_fd_limit(None, args, env)
    }

    /// Started under `ulimit -n fds` when given.
    pub fn with_fd_limit(fds: Option<u32>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["dev", "-port", "0"];
        all.extend_from_slice(args);
        let mut dev = match fds {
            Some(n) => Dev::spawn_with_fd_limit(n, &all, env),
            None => Dev::spawn(&all, env),
        };
        let port = dev.wait_ready();
        Self {
            dev,
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.dev.child.try_wait(), Ok(None))
    }

    /// Asserts the process runs and still answers the API.
    pub fn assert_serving(&mut self) {
        assert!(self.alive(), "the server died; {}", self.dev.output());
        let (status, _) = http(self.port, "GET", "/v2/keys", 0, &[]);
        assert_eq!(status, 200, "the server stopped answering");
    }
}

/// Held by the tests that load the machine (hundreds of thousands of messages, thousands of
/// connections, hundreds of megabytes): they measure latency and memory, so they run one at
/// a time instead of measuring each other.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}
