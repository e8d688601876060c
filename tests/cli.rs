//! The real `qstash` binary: flags and their spellings, the environment, the startup output
//! the JS SDK parses, failures, and shutdown on signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qstash::users::USERS;

const BIN: &str = env!("CARGO_BIN_EXE_qstash");
/// Every wait on the process is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

/// A `qstash` process whose output is collected as it comes; killed when dropped, so a
/// failing test leaves nothing behind.
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Dev {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
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
        std::thread::spawn(move || {
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
            stdout: Vec::new(),
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Reads stdout until a line satisfies `pred`; returns it.
    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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
    fn wait_ready(&mut self) -> u16 {
        self.wait_line("readiness", is_ready_line);
        let url = self.wait_line("QSTASH_URL", |l| l.starts_with("QSTASH_URL="));
        url.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"))
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Collect what is left of stdout.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.stdout.push(line);
                }
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

    fn signal(&self, name: &str) {
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
fn is_ready_line(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.match_indices("runn").any(|(i, _)| {
        let rest = lower[i + 4..].trim_start_matches('n');
        rest.strip_prefix("ing")
            .is_some_and(|r| r.starts_with(" at") || r.starts_with('.'))
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A minimal HTTP/1.1 request as user `user`; returns (status, body).
fn http(port: u16, method: &str, path: &str, user: usize, headers: &[&str]) -> (u16, String) {
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
fn accept_within(listener: &std::net::TcpListener, within: Duration) -> TcpStream {
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

fn keys_of_user_1(port: u16) -> String {
    let (status, body) = http(port, "GET", "/v2/keys", 0, &[]);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn port_0_prints_readiness_then_the_credentials_of_all_four_users() {
    let mut dev = Dev::spawn(&["dev", "-port", "0"], &[]);
    let port = dev.wait_ready();
    assert_ne!(port, 0);
    // The readiness line comes only once the port accepts requests.
    let keys = keys_of_user_1(port);
    assert!(
        keys.contains(USERS[0].current_signing_key) && keys.contains(USERS[0].next_signing_key),
        "{keys}"
    );
    let mut wanted: Vec<String> = USERS
        .iter()
        .flat_map(|u| {
            [
                format!("QSTASH_TOKEN={}", u.token),
                format!("QSTASH_CURRENT_SIGNING_KEY={}", u.current_signing_key),
                format!("QSTASH_NEXT_SIGNING_KEY={}", u.next_signing_key),
            ]
        })
        .collect();
    wanted.retain(|w| !dev.stdout.contains(w));
    while !wanted.is_empty() {
        let line = dev.wait_line("credentials", |l| wanted.iter().any(|w| w == l.trim()));
        wanted.retain(|w| w != line.trim());
    }
    let url_line = dev
        .stdout
        .iter()
        .find(|l| l.starts_with("QSTASH_URL="))
        .unwrap();
    assert_eq!(url_line, &format!("QSTASH_URL=http://127.0.0.1:{port}"));
}

#[test]
fn every_port_flag_spelling_works() {
    for spelling in ["-port N", "-port=N", "--port N", "--port=N"] {
        let port = free_port();
        let args: Vec<String> = spelling
            .replace('N', &port.to_string())
            .split(' ')
            .map(String::from)
            .collect();
        let mut all = vec!["dev"];
        all.extend(args.iter().map(String::as_str));
        let mut dev = Dev::spawn(&all, &[]);
        assert_eq!(dev.wait_ready(), port, "{spelling}");
        keys_of_user_1(port);
    }
}

#[test]
fn the_port_comes_from_the_environment_unless_the_flag_says_otherwise() {
    let from_env = free_port();
    let env_port = from_env.to_string();
    let mut dev = Dev::spawn(&["dev"], &[("QSTASH_DEV_PORT", &env_port)]);
    assert_eq!(dev.wait_ready(), from_env);
    keys_of_user_1(from_env);
    drop(dev);

    let from_flag = free_port();
    let mut dev = Dev::spawn(
        &["dev", "--port", &from_flag.to_string()],
        &[("QSTASH_DEV_PORT", &env_port)],
    );
    assert_eq!(dev.wait_ready(), from_flag, "the flag beats the env var");
    keys_of_user_1(from_flag);
}

#[test]
fn quota_pro_is_accepted_and_raises_the_limits() {
    let publish = |port: u16| {
        http(
            port,
            "POST",
            "/v2/publish/http://127.0.0.1:9/x",
            0,
            &["Upstash-Retries: 20", "Upstash-Delay: 1h"],
        )
    };
    let mut pro = Dev::spawn(&["dev", "-port", "0", "-quota", "pro"], &[]);
    let port = pro.wait_ready();
    let (status, body) = publish(port);
    assert_eq!(status, 200, "pro allows 20 retries: {body}");
    let mut payg = Dev::spawn(&["dev", "-port", "0"], &[]);
    let port = payg.wait_ready();
    let (status, body) = publish(port);
    assert_eq!(status, 400, "payg allows 5 retries: {body}");
}

#[test]
fn invalid_flags_exit_non_zero_with_a_one_line_reason_on_stderr() {
    for (args, needle) in [
        (&["dev", "-quota", "gold"][..], "gold"),
        (&["dev", "-quota=gold"][..], "gold"),
        (&["dev", "-port", "abc"][..], "abc"),
        (&["dev", "--port=99999"][..], "99999"),
    ] {
        let mut dev = Dev::spawn(args, &[]);
        let status = dev.wait_exit(WAIT);
        assert!(!status.success(), "{args:?}: {status}");
        let stderr = dev.stderr.lock().unwrap().clone();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr:?}");
        assert!(lines[0].contains(needle), "{args:?}: {stderr:?}");
    }
}

#[test]
fn a_taken_port_is_reported_on_stdout_the_way_the_js_sdk_parses_it() {
    let holder = std::net::TcpListener::bind("0.0.0.0:0").expect("hold a port");
    let port = holder.local_addr().unwrap().port();
    let mut dev = Dev::spawn(&["dev", "-port", &port.to_string()], &[]);
    let status = dev.wait_exit(WAIT);
    assert!(!status.success(), "{status}");
    let last = dev
        .stdout
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| panic!("nothing on stdout; {}", dev.output()));
    // The SDK searches the output for this exact text, then reads the port from a `:(\d+)`
    // at the very end.
    assert!(last.contains("address already in use"), "{last:?}");
    assert!(last.trim_end().ends_with(&format!(":{port}")), "{last:?}");
    drop(holder);
}

#[test]
fn help_lists_every_flag() {
    for help in ["--help", "-help", "-h"] {
        let mut dev = Dev::spawn(&["dev", help], &[]);
        let status = dev.wait_exit(WAIT);
        assert!(status.success(), "{help}: {status}");
        let text = dev.stdout.join("\n");
        for flag in [
            "-port",
            "-quota",
            "-clock-control",
            "QSTASH_DEV_PORT",
            "payg",
            "pro",
        ] {
            assert!(
                text.contains(flag),
                "{help} does not mention {flag}: {text}"
            );
        }
    }
}

#[test]
fn sigterm_and_sigint_stop_it_with_exit_code_0() {
    for signal in ["TERM", "INT"] {
        let mut dev = Dev::spawn(&["dev", "-port", "0"], &[]);
        let port = dev.wait_ready();
        // A delivery that never gets an answer must not hold up the shutdown.
        let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hang_port = hang.local_addr().unwrap().port();
        let (status, body) = http(
            port,
            "POST",
            &format!("/v2/publish/http://127.0.0.1:{hang_port}/hang"),
            0,
            &["Upstash-Timeout: 1h"],
        );
        assert_eq!(status, 200, "{body}");
        let accepted = accept_within(&hang, WAIT);
        dev.signal(signal);
        let status = dev.wait_exit(Duration::from_secs(5));
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal}: {status}; {}",
            dev.output()
        );
        drop(accepted);
    }
}
