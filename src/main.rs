use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::Parser;
use clap::error::ErrorKind;
use qstash::cli::{
    Cli, Command, DevArgs, HealthArgs, LogFormat, VERSION, banner, explain_error, normalize_args,
};
use qstash::config::Config;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// glibc's malloc spent a fifth of the delivery path's CPU (arena locks, consolidation)
/// under load; mimalloc's thread-local free lists don't.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = normalize_args(std::env::args());
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            eprintln!("{} (see qstash dev --help)", explain_error(&e, &args));
            return std::process::ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Version => {
            println!("qstash {VERSION}");
            std::process::ExitCode::SUCCESS
        }
        Command::Dev(args) => dev(args),
        Command::Health(args) => health(args),
    }
}

fn health(args: HealthArgs) -> std::process::ExitCode {
    match qstash::probe::check(args.host, args.port, std::time::Duration::from_secs(3)) {
        Ok(version) => {
            println!("ok: qstash {version} answers on port {}", args.port);
            std::process::ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("unhealthy: {why}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dev(args: DevArgs) -> std::process::ExitCode {
    // Log lines are written by a background thread: the engine logs state changes while it
    // holds its lock, and a write to a slow stderr (a pipe nobody reads fast) must not hold
    // every other request up. The guard flushes what is left on exit.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking(std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(writer);
    match args.log_format {
        // Colours only for a person at a terminal, not in files, pipes or CI logs.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line, the event's fields at the top level beside "message".
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
    let mut config = Config::new(args.quota);
    config.clock_control = args.clock_control;
    config.retention_bytes = args.retention_mb as usize * 1024 * 1024;
    config.insecure_tls = args.insecure_tls;
    config.rewrite_localhost = args.rewrite_localhost;
    config.data_dir = args.data_dir;
    config.size_for_fd_limit(raise_fd_limit());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("fatal: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Installed before anything is printed: a signal right after the banner must stop
        // the server cleanly, not kill it.
        let shutdown = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                println!("fatal: cannot install signal handlers: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let listeners = match bind(args.host, args.port).await {
            Ok(l) => l,
            Err(e) => {
                // The JS SDK looks for "address already in use" and a trailing ":<port>".
                let reason = match e.kind() {
                    std::io::ErrorKind::AddrInUse => "address already in use".to_string(),
                    _ => e.to_string().to_lowercase(),
                };
                println!("fatal: {reason}: cannot listen on :{}", args.port);
                return std::process::ExitCode::FAILURE;
            }
        };
        let port = listeners[0]
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(args.port);
        let shown = match args.host {
            None => IpAddr::from(Ipv4Addr::LOCALHOST),
            Some(ip) if ip.is_unspecified() => IpAddr::from(Ipv4Addr::LOCALHOST),
            Some(ip) => ip,
        };
        let url = match shown {
            IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
            IpAddr::V4(ip) => format!("http://{ip}:{port}"),
        };
        let ready = move || {
            print!("{}", banner(&url));
            let _ = std::io::stdout().flush();
        };
        match qstash::run_on(config, listeners, shutdown, ready).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                println!("fatal: server error: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

/// Raises the soft limit on open files to the hard limit (every delivery and API connection
/// is a socket) and returns the limit now in force.
fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => limit,
            Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft),
        }
    }
    #[cfg(not(unix))]
    {
        8192
    }
}

/// Loopback only by default (127.0.0.1, and ::1 where the machine has IPv6): the tokens are
/// public constants and localhost destinations are allowed, so an open listener would let
/// anyone on the network relay requests into this machine. `host` chooses otherwise.
async fn bind(host: Option<IpAddr>, port: u16) -> std::io::Result<Vec<TcpListener>> {
    if let Some(ip) = host {
        return Ok(vec![TcpListener::bind(SocketAddr::new(ip, port)).await?]);
    }
    let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let port = v4.local_addr()?.port();
    let mut listeners = vec![v4];
    if let Ok(v6) = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
        listeners.push(v6);
    }
    Ok(listeners)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed by this call.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}
