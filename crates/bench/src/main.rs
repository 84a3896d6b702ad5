//! The `yubin-bench` command line; the work is in the library modules.

use std::time::Duration;

use clap::{Parser, Subcommand};
use yubin_bench::client::Envelope;
use yubin_bench::{
    checks, idle, idle_latency, imap_fill, imap_idle, imap_mix, imap_scale, imap_select,
    imap_users, load, mbox, plot, rlimit,
};

#[derive(Parser)]
#[command(
    name = "yubin-bench",
    about = "Load generator for yubin (SMTP and IMAP throughput, latency, idle memory)"
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
        /// DKIM-sign every message with this RSA or Ed25519 key (PKCS#8 PEM, as `yubin dkim
        /// generate` or `openssl genpkey` writes it) for the --from domain.
        #[arg(long)]
        dkim_key: Option<std::path::PathBuf>,
        #[arg(long, default_value = "s1")]
        dkim_selector: String,
        /// Write one message of the run (signed with --dkim-key if given) to this file, with
        /// LF line ends and no dot-stuffing (what Postfix's `smtp-source -F` sends), and exit.
        #[arg(long)]
        write_message: Option<std::path::PathBuf>,
    },
    /// CPU time of the checks on one arriving message (SPF, iprev, DKIM, ARC, DMARC), in
    /// process, DNS from a static table: signed, unsigned, and the parse alone.
    Checks {
        #[arg(long, short = 'n', default_value_t = 20000)]
        iterations: u32,
        #[arg(long, default_value_t = 10240)]
        size: usize,
        #[arg(long, default_value = "user1@bench.test")]
        to: String,
        #[arg(long, default_value = "a@x.test")]
        from: String,
        /// The signing key (PKCS#8 PEM, RSA or Ed25519).
        #[arg(long)]
        dkim_key: std::path::PathBuf,
        /// Its public key (SPKI PEM, `openssl pkey -pubout`), published in the static DNS.
        #[arg(long)]
        dkim_public: std::path::PathBuf,
        #[arg(long, default_value = "s1")]
        dkim_selector: String,
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
    /// Load mailboxes with the messages of an mbox (cycled): straight into a data directory
    /// through the store (no server may run on it), or over IMAP APPEND with --addr.
    ImapFill {
        /// yubin data directory (store mode).
        #[arg(long, conflicts_with = "addr")]
        data_dir: Option<std::path::PathBuf>,
        /// IMAP server to APPEND to (IMAP mode).
        #[arg(long)]
        addr: Option<String>,
        #[arg(long)]
        tls: bool,
        #[arg(long, default_value = "")]
        password: String,
        /// Login name; `{n}` is replaced by 1..=--users.
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 1)]
        users: usize,
        /// Messages per user.
        #[arg(long, short = 'n')]
        messages: u64,
        /// mbox file, e.g. from `python3 /work/shared/tools/gen_mbox.py OUT.mbox 1000`.
        #[arg(long)]
        mbox: std::path::PathBuf,
        /// Make each repeated mbox message a distinct blob (store mode).
        #[arg(long)]
        unique: bool,
        /// The mailbox to fill; it must exist.
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        /// Appends in flight (store mode) or users filled at once (IMAP mode).
        #[arg(long, default_value_t = 64)]
        parallel: usize,
    },
    /// Create accounts straight in a data directory through the store (no server may run on
    /// it), all with one password hashed once; their domains are added when missing.
    ImapUsers {
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// Address; `{n}` is replaced by 1..=--users.
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 1)]
        users: usize,
        #[arg(long)]
        password: String,
        #[arg(long, default_value_t = 64)]
        parallel: usize,
    },
    /// Time LOGIN, SELECT and `UID FETCH 1:* (UID FLAGS)` on one mailbox.
    ImapSelect {
        #[arg(long, default_value = "127.0.0.1:143")]
        addr: String,
        #[arg(long)]
        tls: bool,
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Open K sessions that log in, SELECT INBOX and IDLE; report server RSS per connection.
    ImapIdle {
        #[arg(long, default_value = "127.0.0.1:993")]
        addr: String,
        #[arg(long, short = 'k', default_value_t = 1000)]
        connections: usize,
        #[arg(long)]
        tls: bool,
        /// Login name; `{n}` is replaced by 1..=--users, used round robin.
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 1)]
        users: usize,
        #[arg(long)]
        password: String,
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 3000)]
        settle_ms: u64,
        /// Sessions being opened at the same time (each costs the server a password hash).
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// The provider scenario: N IDLE sessions on N accounts from addresses spread over
    /// 127.0.0.0/8 (memory per session), deliveries to D of them (250 → EXISTS), everyone
    /// leaving (memory returned), then all reconnecting at once (the storm).
    ImapScale {
        /// IMAP endpoint (implicit TLS unless --plain).
        #[arg(long, default_value = "127.0.0.1:993")]
        imap: String,
        #[arg(long)]
        plain: bool,
        /// SMTP endpoint for the deliveries (no AUTH).
        #[arg(long, default_value = "127.0.0.1:25")]
        smtp: String,
        /// Login name; `{n}` is replaced by 1..=--sessions + --warmup (one account each).
        #[arg(long)]
        user: String,
        #[arg(long, short = 'k', default_value_t = 10000)]
        sessions: usize,
        /// Sessions opened and closed before the baseline is read.
        #[arg(long, default_value_t = 100)]
        warmup: usize,
        #[arg(long)]
        password: String,
        #[arg(long)]
        pid: u32,
        /// Source addresses 127.1.0.1… used round robin (0: the kernel's choice).
        #[arg(long, default_value_t = 64)]
        sources: usize,
        /// Sessions being opened at the same time in the hold phase.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        #[arg(long, default_value_t = 1000)]
        deliveries: usize,
        #[arg(long, default_value_t = 16)]
        delivery_parallel: usize,
        #[arg(long, default_value_t = 5000)]
        miss_ms: u64,
        /// Skip the reconnect storm.
        #[arg(long)]
        no_storm: bool,
        /// Sessions that reconnect in the storm: the last K of the hold phase, whose
        /// credentials the server verified most recently (0: all).
        #[arg(long, default_value_t = 0)]
        storm_sessions: usize,
        /// A last memory reading this many seconds after the hold phase ended, once the
        /// server's credential cache has let its entries expire (0: none).
        #[arg(long, default_value_t = 0)]
        expired_reading_s: u64,
        #[arg(long, default_value_t = 5000)]
        settle_ms: u64,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Delivery → IDLE notification latency: time from the SMTP 250 to `* N EXISTS` in an
    /// IDLE session (on another node when --imap names one), optionally under SMTP load.
    IdleLatency {
        /// SMTP endpoint the messages are delivered to (no auth, plain).
        #[arg(long, default_value = "127.0.0.1:25")]
        smtp: String,
        /// IMAP endpoints, comma-separated; sessions are spread over them round robin.
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:143")]
        imap: Vec<String>,
        #[arg(long)]
        tls: bool,
        /// Login name; `{n}` is replaced by 1..=--users.
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 1)]
        users: usize,
        /// Recipient address pattern when it differs from the login name (`{n}` as --user).
        #[arg(long)]
        rcpt: Option<String>,
        #[arg(long)]
        password: String,
        /// IDLE sessions, one per account (accounts 1..=K); default: all --users.
        #[arg(long, short = 'k')]
        sessions: Option<usize>,
        /// Measured deliveries.
        #[arg(long, short = 'n', default_value_t = 1000)]
        messages: u64,
        /// Measured deliveries per second.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Extra SMTP senders delivering continuously during the measurement.
        #[arg(long, default_value_t = 0)]
        load: usize,
        /// Accounts the load goes to: `others` (without a session) or `same` (the measured
        /// ones); default: others when --users exceeds --sessions, else same.
        #[arg(long, value_parser = ["others", "same"])]
        load_to: Option<String>,
        /// Message size in bytes (headers + body).
        #[arg(long, default_value_t = 4096)]
        size: usize,
        #[arg(long, default_value = "bench@x.test")]
        from: String,
        /// A delivery with no EXISTS this many milliseconds after its 250 counts as missed.
        #[arg(long, default_value_t = 5000)]
        miss_ms: u64,
        /// Milliseconds of load before the first measured delivery.
        #[arg(long, default_value_t = 1000)]
        warmup_ms: u64,
        /// Sessions being opened at the same time.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        /// Timeout for each connect/read/write, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Print only the JSON line on stdout (the human report goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// C clients, each its own user, run the IMAP command mix for S seconds.
    ImapMix {
        #[arg(long, default_value = "127.0.0.1:143")]
        addr: String,
        #[arg(long)]
        tls: bool,
        #[arg(long, short = 'c', default_value_t = 50)]
        clients: usize,
        #[arg(long, short = 's', default_value_t = 30)]
        seconds: u64,
        /// Login name pattern; `{n}` is replaced by 1..=C.
        #[arg(long)]
        user_pattern: String,
        #[arg(long)]
        password: String,
        /// mbox whose messages the APPENDs use.
        #[arg(long)]
        mbox: std::path::PathBuf,
        /// The mailbox SELECT alternates with INBOX.
        #[arg(long, default_value = "Archive")]
        other_mailbox: String,
        #[arg(long, default_value = "server")]
        label: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Draw a CSV of samples (time in seconds, then one column per series) as a PNG, one
    /// chart per series (the soak run's plot, docs/soak.md).
    Plot {
        #[arg(long)]
        csv: std::path::PathBuf,
        #[arg(long)]
        out: std::path::PathBuf,
        /// A TrueType/OpenType font for the text (Debian: fonts-dejavu-core).
        #[arg(
            long,
            default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        )]
        font: std::path::PathBuf,
        #[arg(long, default_value = "samples")]
        title: String,
        /// Vertical lines at these fractions of the run, comma-separated (e.g. 0.2,0.5).
        #[arg(long, value_delimiter = ',')]
        marks: Vec<f64>,
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
            dkim_key,
            dkim_selector,
            write_message,
        } => {
            raise_fd_limit(concurrency.saturating_add(64));
            let cfg = load::LoadConfig {
                addr,
                messages,
                concurrency,
                size,
                envelope: Envelope { helo, from, to },
                io_timeout: Duration::from_secs(timeout),
                pid,
                sample_every: Duration::from_millis(sample_ms.max(1)),
                dkim: dkim_key.map(|k| (k, dkim_selector)),
            };
            if let Some(path) = write_message {
                std::fs::write(&path, load::sample_message(&cfg)?)?;
                return Ok(());
            }
            let report = load::run(cfg).await?;
            print!("{}", report.human());
            println!("{}", report.json());
        }
        Cmd::Checks {
            iterations,
            size,
            to,
            from,
            dkim_key,
            dkim_public,
            dkim_selector,
        } => {
            let cfg = checks::ChecksConfig {
                iterations: iterations.max(1),
                size,
                from,
                to,
                dkim_key,
                dkim_public,
                selector: dkim_selector,
            };
            // One thread: the figures are the checks' own work, without the wake-ups and
            // work-stealing searches a multi-thread runtime adds to a one-at-a-time loop.
            let report = tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(checks::run(cfg))
            })
            .await??;
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
        Cmd::ImapFill {
            data_dir,
            addr,
            tls,
            password,
            user,
            users,
            messages,
            mbox,
            unique,
            mailbox,
            parallel,
        } => {
            let target = match (data_dir, addr) {
                (Some(dir), _) => imap_fill::Target::DataDir(dir),
                (None, Some(addr)) => imap_fill::Target::Imap {
                    addr,
                    tls,
                    password,
                },
                (None, None) => anyhow::bail!("give --data-dir or --addr"),
            };
            raise_fd_limit(parallel.saturating_add(64));
            let json = imap_fill::run(imap_fill::FillConfig {
                target,
                users: imap_fill::users(&user, users),
                messages,
                mbox,
                unique,
                mailbox,
                parallel,
            })
            .await?;
            println!("{json}");
        }
        Cmd::ImapUsers {
            data_dir,
            user,
            users,
            password,
            parallel,
        } => {
            let json = imap_users::run(imap_users::UsersConfig {
                data_dir,
                users: imap_fill::users(&user, users),
                password,
                parallel,
            })
            .await?;
            println!("{json}");
        }
        Cmd::ImapSelect {
            addr,
            tls,
            user,
            password,
            mailbox,
            repeat,
            timeout,
        } => {
            let (human, json) = imap_select::run(imap_select::SelectConfig {
                addr,
                tls,
                user,
                password,
                mailbox,
                repeat,
                io_timeout: Duration::from_secs(timeout),
            })
            .await?;
            print!("{human}");
            println!("{json}");
        }
        Cmd::ImapIdle {
            addr,
            connections,
            tls,
            user,
            users,
            password,
            pid,
            settle_ms,
            parallel,
            timeout,
        } => {
            raise_fd_limit(connections.saturating_add(64));
            let (human, json) = imap_idle::run(imap_idle::ImapIdleConfig {
                addr,
                tls,
                connections,
                users: imap_fill::users(&user, users),
                password,
                pid,
                settle: Duration::from_millis(settle_ms),
                open_parallel: parallel,
                io_timeout: Duration::from_secs(timeout),
            })
            .await?;
            print!("{human}");
            println!("{json}");
        }
        Cmd::ImapScale {
            imap,
            plain,
            smtp,
            user,
            sessions,
            warmup,
            password,
            pid,
            sources,
            parallel,
            deliveries,
            delivery_parallel,
            miss_ms,
            no_storm,
            storm_sessions,
            expired_reading_s,
            settle_ms,
            timeout,
            seed,
        } => {
            raise_fd_limit(
                sessions
                    .saturating_add(delivery_parallel)
                    .saturating_add(64),
            );
            let (human, json) = imap_scale::run(imap_scale::ImapScaleConfig {
                imap,
                tls: !plain,
                smtp,
                logins: imap_fill::users(&user, sessions + warmup),
                password,
                pid,
                sources,
                open_parallel: parallel,
                warmup,
                deliveries,
                delivery_parallel,
                miss_after: Duration::from_millis(miss_ms),
                storm: !no_storm,
                storm_sessions,
                expired_reading: Duration::from_secs(expired_reading_s),
                settle: Duration::from_millis(settle_ms),
                io_timeout: Duration::from_secs(timeout),
                seed,
            })
            .await?;
            print!("{human}");
            println!("{json}");
        }
        Cmd::IdleLatency {
            smtp,
            imap,
            tls,
            user,
            users,
            rcpt,
            password,
            sessions,
            messages,
            rate,
            load,
            load_to,
            size,
            from,
            miss_ms,
            warmup_ms,
            parallel,
            timeout,
            json,
        } => {
            let logins = imap_fill::users(&user, users);
            let rcpts = imap_fill::users(rcpt.as_deref().unwrap_or(&user), users);
            anyhow::ensure!(
                rcpts.len() == logins.len(),
                "--rcpt and --user must both contain {{n}} or neither"
            );
            let sessions = sessions.unwrap_or(logins.len());
            let load_to = match load_to.as_deref() {
                Some("same") => idle_latency::LoadTo::Same,
                Some(_) => idle_latency::LoadTo::Others,
                None if sessions < logins.len() => idle_latency::LoadTo::Others,
                None => idle_latency::LoadTo::Same,
            };
            raise_fd_limit(sessions.saturating_add(load).saturating_add(256));
            let (human, line) = idle_latency::run(idle_latency::IdleLatencyConfig {
                smtp,
                imap,
                tls,
                logins,
                rcpts,
                password,
                sessions,
                messages,
                rate,
                load,
                load_to,
                size,
                from,
                miss_after: Duration::from_millis(miss_ms),
                warmup: Duration::from_millis(warmup_ms),
                io_timeout: Duration::from_secs(timeout),
                open_parallel: parallel,
            })
            .await?;
            if json {
                eprint!("{human}");
            } else {
                print!("{human}");
            }
            println!("{line}");
        }
        Cmd::ImapMix {
            addr,
            tls,
            clients,
            seconds,
            user_pattern,
            password,
            mbox,
            other_mailbox,
            label,
            timeout,
        } => {
            raise_fd_limit(clients.saturating_add(64));
            let (human, json) = imap_mix::run(imap_mix::MixConfig {
                addr,
                tls,
                users: imap_fill::users(&user_pattern, clients),
                password,
                seconds,
                messages: std::sync::Arc::new(mbox::load(&mbox)?),
                other_mailbox,
                io_timeout: Duration::from_secs(timeout),
                label,
            })
            .await?;
            print!("{human}");
            println!("{json}");
        }
        Cmd::Plot {
            csv,
            out,
            font,
            title,
            marks,
        } => plot::run(&plot::PlotConfig {
            csv: &csv,
            out: &out,
            font: &font,
            title: &title,
            marks,
        })?,
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
