//! The `yubin-bench` command line; the work is in the library modules.

use std::time::Duration;

use clap::{Parser, Subcommand};
use yubin_bench::client::Envelope;
use yubin_bench::{idle, load, rlimit};

#[derive(Parser)]
#[command(
    name = "yubin-bench",
    about = "Load generator for yubin (SMTP throughput, idle memory)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Deliver N messages, C connections at a time, a new connection per message.
    Smtp {
        #[arg(long, default_value = "127.0.0.1:2525")]
        addr: String,
        #[arg(long, short = 'n', default_value_t = 1000)]
        messages: u64,
        #[arg(long, short = 'c', default_value_t = 10)]
        concurrency: usize,
        /// Message size in bytes (headers + body, before dot-stuffing).
        #[arg(long, default_value_t = 10240)]
        size: usize,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "a@x.test")]
        from: String,
        #[arg(long, default_value = "bench.yubin.test")]
        helo: String,
        /// Server process id: sample its VmRSS during the run and report VmHWM.
        #[arg(long)]
        pid: Option<u32>,
        /// Timeout for each connect/read/write, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// RSS sampling interval in milliseconds.
        #[arg(long, default_value_t = 50)]
        sample_ms: u64,
    },
    /// Open K connections that read the banner and stay idle; report server RSS per connection.
    Idle {
        #[arg(long, default_value = "127.0.0.1:2525")]
        addr: String,
        #[arg(long, short = 'k', default_value_t = 1000)]
        connections: usize,
        #[arg(long)]
        pid: u32,
        /// Milliseconds to wait after the last connection opened before measuring.
        #[arg(long, default_value_t = 2000)]
        settle_ms: u64,
        /// Connections being opened at the same time.
        #[arg(long, default_value_t = 50)]
        parallel: usize,
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Smtp {
            addr,
            messages,
            concurrency,
            size,
            to,
            from,
            helo,
            pid,
            timeout,
            sample_ms,
        } => {
            raise_fd_limit(concurrency.saturating_add(64));
            let report = load::run(load::LoadConfig {
                addr,
                messages,
                concurrency,
                size,
                envelope: Envelope { helo, from, to },
                io_timeout: Duration::from_secs(timeout),
                pid,
                sample_every: Duration::from_millis(sample_ms.max(1)),
            })
            .await?;
            print!("{}", report.human());
            println!("{}", report.json());
        }
        Cmd::Idle {
            addr,
            connections,
            pid,
            settle_ms,
            parallel,
            timeout,
        } => {
            raise_fd_limit(connections.saturating_add(64));
            let report = idle::run(idle::IdleConfig {
                addr,
                connections,
                pid,
                settle: Duration::from_millis(settle_ms),
                open_parallel: parallel,
                io_timeout: Duration::from_secs(timeout),
            })
            .await?;
            print!("{}", report.human());
            println!("{}", report.json());
        }
    }
    Ok(())
}

/// Raises the open-file limit; warns when it still cannot hold `needed` sockets.
fn raise_fd_limit(needed: usize) {
    match rlimit::raise_nofile() {
        Ok(n) if n < needed as u64 => {
            eprintln!("warning: open-file limit is {n}, below the {needed} this run needs")
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: cannot raise open-file limit: {e}"),
    }
}
