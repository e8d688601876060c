use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::Parser;
use clap::error::ErrorKind;
use qstash::cli::{Cli, Command, banner, normalize_args};
use qstash::config::Config;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// glibc's malloc spent a fifth of the delivery path's CPU (arena locks, consolidation)
/// under load; mimalloc's thread-local free lists don't.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args())) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{line} (see qstash dev --help)");
            return std::process::ExitCode::from(2);
        }
    };
    let Command::Dev(args) = cli.command;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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
        let listener = match bind(args.port).await {
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
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
        let mut config = Config::new(args.quota);
        config.clock_control = args.clock_control;
        print!("{}", banner(&format!("http://127.0.0.1:{port}")));
        let _ = std::io::stdout().flush();
        match qstash::run(config, listener, shutdown_signal()).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                println!("fatal: server error: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

/// All interfaces (Docker needs it), IPv6 and IPv4 where the machine has IPv6.
async fn bind(port: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
        Err(_) => TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
