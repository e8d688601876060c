//! The command line: `qstash dev [-host H] [-port N] [-quota payg|pro] [-clock-control] …`,
//! `qstash version`, `qstash help`, with Go-style single-dash flags (`-port 8081`,
//! `-port=8081`) as the official binary accepts them, and the startup banner.

use std::net::IpAddr;

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::QuotaKind;
use crate::users::USERS;

/// This server's name and version, and the commit it was built from when known, so a user
/// can tell which server answers (`--version`, `qstash version`, the banner).
pub const VERSION: &str = env!("QSTASH_VERSION");

#[derive(Parser, Debug)]
#[command(
    name = "qstash",
    version = VERSION,
    about = "qstash: a QStash-compatible server (the Upstash QStash /v2 API, in Rust)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the development server (in memory: a restart resets everything).
    #[command(
        after_help = "Flags also work Go-style, as with the official binary: -port 8081, -port=8081, -quota pro.\nBoolean environment variables take 1/0, true/false, yes/no or on/off."
    )]
    Dev(DevArgs),
    /// Exit 0 when a server answers GET /health on the port, 1 otherwise (the Docker
    /// HEALTHCHECK: the image has no shell or curl).
    Health(HealthArgs),
    /// Print this server's name and version.
    Version,
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The address the server listens on (0.0.0.0 and :: are asked on loopback).
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: IpAddr,

    /// The port the server listens on.
    #[arg(long, env = "QSTASH_DEV_PORT", default_value_t = 8080)]
    pub port: u16,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// The address to listen on. By default 127.0.0.1 (and ::1): the tokens are public, so
    /// only this machine may use the server. 0.0.0.0 listens on every interface (Docker).
    #[arg(long, env = "QSTASH_DEV_HOST", value_parser = parse_host)]
    pub host: Option<IpAddr>,

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
    #[arg(
        long = "clock-control",
        env = "QSTASH_DEV_CLOCK_CONTROL",
        value_parser = BoolishValueParser::new(),
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub clock_control: bool,

    /// Memory kept per user for the event log and, separately, for the DLQ, in MB; the oldest
    /// entries go first beyond it (bodies and responses count by their size).
    #[arg(long = "retention-mb", env = "QSTASH_DEV_RETENTION_MB", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub retention_mb: u64,

    /// Accept any TLS certificate from destinations (self-signed development certificates).
    /// Without it, destinations are checked against the system's trust store, SSL_CERT_FILE /
    /// SSL_CERT_DIR and the Mozilla roots.
    #[arg(
        long = "insecure-tls",
        env = "QSTASH_DEV_INSECURE_TLS",
        value_parser = BoolishValueParser::new(),
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub insecure_tls: bool,

    /// How log lines are written to stderr: text or json (one object per line). RUST_LOG
    /// chooses what is logged (default info; debug adds one line per API request).
    #[arg(
        long = "log-format",
        env = "QSTASH_DEV_LOG_FORMAT",
        value_enum,
        default_value = "text",
        ignore_case = true
    )]
    pub log_format: LogFormat,

    /// Deliver to this host instead when a destination is localhost, 127.0.0.1 or ::1 (port,
    /// path and query kept). In Docker: host.docker.internal, so the server reaches the
    /// machine's own apps.
    #[arg(long = "rewrite-localhost", env = "QSTASH_DEV_REWRITE_LOCALHOST", value_parser = parse_rewrite)]
    pub rewrite_localhost: Option<String>,

    /// Keep state in this directory across restarts and crashes (created if missing; one
    /// server at a time). Without it everything is kept in memory only.
    #[arg(long = "data-dir", env = "QSTASH_DEV_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<std::path::PathBuf>,
}

fn parse_rewrite(s: &str) -> Result<String, String> {
    crate::domain::loopback::validate_host(s)
}

fn parse_quota(s: &str) -> Result<QuotaKind, String> {
    s.parse()
}

fn parse_host(s: &str) -> Result<IpAddr, String> {
    match s.trim() {
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                format!(
                    "invalid host \"{s}\": expected an IP address such as 127.0.0.1, 0.0.0.0 or ::"
                )
            }),
    }
}

/// The long flags that may be written Go-style with one dash.
const LONG_FLAGS: [&str; 12] = [
    "host",
    "data-dir",
    "port",
    "quota",
    "log-port",
    "clock-control",
    "retention-mb",
    "insecure-tls",
    "log-format",
    "rewrite-localhost",
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

/// The one-line reason for a command-line error. When the bad value came from an
/// environment variable rather than a flag the user typed, it names the variable.
pub fn explain_error(e: &clap::Error, args: &[String]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return first;
    };
    let cli = Cli::command();
    let Some(dev) = cli.find_subcommand("dev") else {
        return first;
    };
    let from_env = dev.get_arguments().find_map(|a| {
        let long = format!("--{}", a.get_long()?);
        let typed = args
            .iter()
            .any(|x| *x == long || x.starts_with(&format!("{long}=")));
        let env = a.get_env()?.to_str()?;
        (arg.starts_with(&long) && !typed && std::env::var(env).ok().as_deref() == Some(value))
            .then(|| {
                (
                    env.to_string(),
                    a.get_num_args().is_some_and(|n| n.min_values() == 0),
                )
            })
    });
    let Some((env, boolean)) = from_env else {
        return first;
    };
    let why = first.rsplit_once("': ").map_or("", |(_, why)| why);
    let expected = if boolean {
        "expected 1/0, true/false, yes/no or on/off".to_string()
    } else if why.is_empty() {
        "not a valid value".to_string()
    } else {
        why.to_string()
    };
    format!("invalid {env}={value:?}: {expected}")
}

/// What the server prints once it listens: the readiness line the JS SDK waits for
/// (`/runn+ing( at|\.)/i`), which server this is, the web console's address and the
/// credentials of the four users.
pub fn banner(url: &str) -> String {
    let mut out = String::new();
    out.push_str("Upstash QStash development server is running.\n");
    out.push_str(&format!(
        "Served by qstash {VERSION}, a QStash-compatible server written in Rust.\n"
    ));
    out.push_str(&format!("Console: {url}/console\n\n"));
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

    fn dev(args: &[&str]) -> DevArgs {
        match parse(args).unwrap().command {
            Command::Dev(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn go_style_flags() {
        assert_eq!(dev(&["qstash", "dev", "-port", "8081"]).port, 8081);
        assert_eq!(dev(&["qstash", "dev", "-port=8082"]).port, 8082);
        assert_eq!(dev(&["qstash", "dev", "--port", "8083"]).port, 8083);
        assert_eq!(dev(&["qstash", "dev", "--port=8084"]).port, 8084);
        let d = dev(&["qstash", "dev", "-clock-control", "-host", "0.0.0.0"]);
        assert!(d.clock_control);
        assert_eq!(d.host, Some(IpAddr::from([0, 0, 0, 0])));
        assert!(dev(&["qstash", "dev", "-clock-control=on"]).clock_control);
        assert!(!dev(&["qstash", "dev", "-clock-control=0"]).clock_control);
    }

    #[test]
    fn log_format_rewrite_and_health() {
        assert_eq!(dev(&["qstash", "dev"]).log_format, LogFormat::Text);
        assert_eq!(
            dev(&["qstash", "dev", "-log-format", "JSON"]).log_format,
            LogFormat::Json
        );
        assert!(parse(&["qstash", "dev", "-log-format=xml"]).is_err());
        assert_eq!(
            dev(&[
                "qstash",
                "dev",
                "-rewrite-localhost",
                "host.docker.internal"
            ])
            .rewrite_localhost
            .as_deref(),
            Some("host.docker.internal")
        );
        assert!(parse(&["qstash", "dev", "-rewrite-localhost=http://x"]).is_err());
        match parse(&["qstash", "health", "-port", "9001"])
            .unwrap()
            .command
        {
            Command::Health(h) => {
                assert_eq!((h.port, h.host.to_string().as_str()), (9001, "127.0.0.1"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn docker_style_repeated_program_name() {
        assert_eq!(
            dev(&["qstash", "qstash", "dev", "-port", "9000"]).port,
            9000
        );
    }

    #[test]
    fn quota_values() {
        assert_eq!(
            dev(&["qstash", "dev", "-quota", "pro"]).quota,
            QuotaKind::Pro
        );
        assert!(parse(&["qstash", "dev", "-quota=gold"]).is_err());
        assert!(parse(&["qstash", "dev", "-port=http"]).is_err());
        assert!(parse(&["qstash", "dev", "-host=nowhere"]).is_err());
    }

    #[test]
    fn banner_has_readiness_line_version_and_credentials() {
        let b = banner("http://127.0.0.1:8080");
        assert!(b.lines().next().unwrap().ends_with("is running."));
        assert!(b.contains(VERSION));
        assert!(b.contains("\nConsole: http://127.0.0.1:8080/console\n"));
        assert!(b.contains(
            "QSTASH_TOKEN=eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
        ));
        assert!(b.contains("QSTASH_NEXT_SIGNING_KEY=sig_7GFR4YaDshFcqsxWRZpRB161jguD"));
        assert_eq!(b.matches("QSTASH_URL=http://127.0.0.1:8080").count(), 4);
    }
}
