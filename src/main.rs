//! The `weir` command.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir::compile::Registry;
use weir::config::Source;
use weir::Gateway;

/// weir: a declarative API gateway in the style of Spring Cloud Gateway.
///
/// With no arguments, runs the embedded default config (the OpenFaaS gateway's routes).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The routes file to run (default: the embedded default config).
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Overrides `server.listen`.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Overrides `admin.listen`.
    #[arg(long, value_name = "HOST:PORT")]
    admin_listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validates FILE: prints the compiled route table, or every error (exit status 1).
    Check {
        /// The routes file.
        file: PathBuf,
    },
    /// Runs only the async queue worker, to scale workers out: it takes work from the NATS
    /// queue of the config's `async:` section (the embedded default when no --config is given).
    QueueWorker,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: piped logs (journald, docker, a file, a test
        // waiting for the "listening" line) must be plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Some(Command::Check { file }) => check(&file),
        Some(Command::QueueWorker) => queue_worker(cli.config),
        None => serve(cli),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    let source = match Source::read(file) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match weir::check::check(&source, Registry::default(), &|name| {
        std::env::var(name).ok()
    }) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} error{} in {}",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" },
                file.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn queue_worker(config: Option<PathBuf>) -> ExitCode {
    let source = match &config {
        Some(path) => match Source::read(path) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Source::embedded(),
    };
    let settings = match weir::config::load(&source, &|name| std::env::var(name).ok()) {
        Ok(config) => config.async_queue,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    if settings.queue != weir::config::QueueKind::Nats {
        eprintln!("error: the queue worker on its own needs `async.queue: nats`; the embedded queue lives inside a running gateway");
        return ExitCode::FAILURE;
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let queue = match weir::queue::Queue::open(settings, Default::default()).await {
            Ok(queue) => std::sync::Arc::new(queue),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(url = %queue.settings.nats.url, "queue worker running");
        let client = weir::proxy::Upstream::default()
            .client(std::time::Duration::from_secs(5), Default::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(weir::queue::worker::run(queue, client, stopped));
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the invocations under way");
        let _ = stop.send(true);
        let _ = worker.await;
        ExitCode::SUCCESS
    })
}

fn serve(cli: Cli) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let mut builder = Gateway::builder();
        if let Some(path) = cli.config {
            builder = builder.config_file(path);
        }
        if let Some(addr) = cli.listen {
            builder = builder.listen(addr);
        }
        if let Some(addr) = cli.admin_listen {
            builder = builder.admin_listen(addr);
        }
        let gateway = match builder.start().await {
            Ok(gateway) => gateway,
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                return ExitCode::FAILURE;
            }
        };
        tokio::select! {
            _ = shutdown_signal() => {
                tracing::info!("shutting down: finishing open requests");
                gateway.shutdown().await;
            }
        }
        ExitCode::SUCCESS
    })
}

/// The multi-threaded runtime both commands run on; `None` (after saying why) when it cannot
/// start.
///
/// Without tokio's LIFO slot, a task woken from a worker thread joins the back of its run
/// queue instead of running next: measured on loopback, a shorter p99 over HTTP/1 and less CPU
/// per request over HTTP/2 (BENCHMARKS.md, "Tenth pass"). The setting is unstable tokio API,
/// compiled in when tokio is built with `--cfg tokio_unstable` (.cargo/config.toml); a build
/// without it keeps the slot.
fn runtime() -> Option<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    match builder.enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// mimalloc: weir allocates many small objects per request and per reload, from every worker
/// thread; glibc's allocator is measurably slower at both.
#[global_allocator]
static ALLOCATOR: weir::alloc::MiMalloc = weir::alloc::MiMalloc;
