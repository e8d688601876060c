//! The command line: `qstash dev [-port N] [-quota payg|pro] [-clock-control]`, with Go-style
//! single-dash flags (`-port 8081`, `-port=8081`) as the official binary accepts them, and
//! the startup banner.

use clap::{Args, Parser, Subcommand};

use crate::config::QuotaKind;
use crate::users::USERS;

#[derive(Parser, Debug)]
#[command(
    name = "qstash",
    version,
    about = "A QStash-compatible development server",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the development server (in memory: a restart resets everything).
    #[command(
        after_help = "Flags also work Go-style, as with the official binary: -port 8081, -port=8081, -quota pro."
    )]
    Dev(DevArgs),
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// The port to start the HTTP server at (0 picks a free one).
    #[arg(long, env = "QSTASH_DEV_PORT", default_value_t = 8080)]
    pub port: u16,

    /// The quota of the users: payg or pro (simulated plan limits: retries, delay, message size, queues).
    #[arg(long, env = "QSTASH_DEV_QUOTA", default_value = "payg", value_parser = parse_quota)]
    pub quota: QuotaKind,

    /// Accepted for compatibility with the official CLI (the Upstash Console's log server);
    /// nothing listens there: the logs are served at /v2/events.
    #[arg(long = "log-port", env = "QSTASH_DEV_LOG_PORT")]
    pub log_port: Option<u16>,

    /// Serve /__qstash/clock so tests can advance or pause the server's clock.
    #[arg(long = "clock-control", env = "QSTASH_DEV_CLOCK_CONTROL")]
    pub clock_control: bool,
}

fn parse_quota(s: &str) -> Result<QuotaKind, String> {
    s.parse()
}

/// The long flags that may be written Go-style with one dash.
const LONG_FLAGS: [&str; 6] = [
    "port",
    "quota",
    "log-port",
    "clock-control",
    "help",
    "version",
];

/// Rewrites `-port`, `-port=1` into `--port`, `--port=1`; everything else is left alone.
/// A repeated program name is dropped, so the documented `docker run IMAGE qstash dev`
/// works with `ENTRYPOINT ["qstash"]`.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args: Vec<String> = args.into_iter().collect();
    if args.get(1).map(String::as_str) == Some("qstash") {
        args.remove(1);
    }
    args.into_iter()
        .map(|arg| {
            let Some(rest) = arg.strip_prefix('-') else {
                return arg;
            };
            if rest.starts_with('-') {
                return arg;
            }
            let name = rest.split('=').next().unwrap_or("");
            if LONG_FLAGS.contains(&name) {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

/// What the server prints once it listens: the readiness line the JS SDK waits for
/// (`/runn+ing( at|\.)/i`) and the credentials of the four users.
pub fn banner(url: &str) -> String {
    let mut out = String::new();
    out.push_str("Upstash QStash development server is running.\n\n");
    out.push_str("A default user has been created for you to authorize your requests.\n");
    for (i, user) in USERS.iter().enumerate() {
        if i == 1 {
            out.push_str("\nTest users (each has its own messages, schedules and signing keys):\n");
        }
        if i > 0 {
            out.push_str(&format!("\nUser {}\n", user.name));
        }
        out.push_str(&format!(
            "QSTASH_URL={url}\nQSTASH_TOKEN={}\nQSTASH_CURRENT_SIGNING_KEY={}\nQSTASH_NEXT_SIGNING_KEY={}\n",
            user.token, user.current_signing_key, user.next_signing_key
        ));
    }
    out.push_str(&format!(
        "\nSample cURL request:\ncurl -X POST {url}/v2/publish/https://example.com -H \"Authorization: Bearer {}\"\n",
        USERS[0].token
    ));
    out.push_str("\nCheck out documentation for more details: https://upstash.com/docs/qstash/howto/local-development\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(normalize_args(args.iter().map(|s| s.to_string())))
    }

    fn port(args: &[&str]) -> u16 {
        match parse(args).unwrap().command {
            Command::Dev(d) => d.port,
        }
    }

    #[test]
    fn go_style_flags() {
        assert_eq!(port(&["qstash", "dev", "-port", "8081"]), 8081);
        assert_eq!(port(&["qstash", "dev", "-port=8082"]), 8082);
        assert_eq!(port(&["qstash", "dev", "--port", "8083"]), 8083);
        assert_eq!(port(&["qstash", "dev", "--port=8084"]), 8084);
    }

    #[test]
    fn docker_style_repeated_program_name() {
        assert_eq!(port(&["qstash", "qstash", "dev", "-port", "9000"]), 9000);
    }

    #[test]
    fn quota_values() {
        let Command::Dev(d) = parse(&["qstash", "dev", "-quota", "pro"]).unwrap().command;
        assert_eq!(d.quota, QuotaKind::Pro);
        assert!(parse(&["qstash", "dev", "-quota=gold"]).is_err());
        assert!(parse(&["qstash", "dev", "-port=http"]).is_err());
    }

    #[test]
    fn banner_has_readiness_line_and_credentials() {
        let b = banner("http://127.0.0.1:8080");
        assert!(b.lines().next().unwrap().ends_with("is running."));
        assert!(b.contains(
            "QSTASH_TOKEN=eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
        ));
        assert!(b.contains("QSTASH_NEXT_SIGNING_KEY=sig_7GFR4YaDshFcqsxWRZpRB161jguD"));
        assert_eq!(b.matches("QSTASH_URL=http://127.0.0.1:8080").count(), 4);
    }
}
