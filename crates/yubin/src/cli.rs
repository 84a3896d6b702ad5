//! The command line. Users and scripts rely on these names; keep them stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// yubin — an all-in-one mail server: SMTP (receiving and submission), POP3 and IMAP.
#[derive(Debug, Parser)]
#[command(name = "yubin", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Without it, /etc/yubin/yubin.toml is read if it exists,
    /// else every setting takes its default.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "YUBIN_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mail server: every listener in [listen], until SIGTERM or Ctrl-C.
    Serve,
    #[command(flatten)]
    Admin(AdminCommand),
    /// Inspect and manage the outbound queue (works while the server runs).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Manage DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Apply the retention policies ([retention]) now, or show what they would remove.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Print the DNS records to publish for DOMAIN (one of this server's domains) as a
    /// zone-file snippet: MX, SPF, DKIM (every key in the store), DMARC, TLS reporting,
    /// MTA-STS (commented), client SRV records (RFC 6186/8314) and autoconfiguration names.
    DnsRecords {
        /// The mail domain, e.g. example.com.
        domain: String,
    },
    /// Look up every record `dns-records` prints for DOMAIN, and the mail host's addresses
    /// and their PTR records, and say what is missing or wrong (exit status 1 if anything).
    /// Uses [dns] nameservers, else the system's resolvers.
    CheckDns {
        /// The mail domain, e.g. example.com.
        domain: String,
    },
    /// Quotas (RFC 9208): per-account limits on storage and message count; the defaults
    /// are [quota] and [quota.domain."…"] in the configuration.
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Manage bans of client addresses (made by the password-guessing defence or by hand).
    /// Running servers see changes within [auth] ban_refresh_secs.
    #[command(subcommand)]
    Ban(BanCommand),
    /// Deliver one message from standard input to the INBOX of local recipients (a local
    /// delivery agent, like dovecot-lda). Exit status: 0 delivered, 67 unknown recipient,
    /// 65 message too large or empty, 75 try again later.
    Deliver {
        /// Local addresses (aliases are expanded).
        #[arg(required = true)]
        recipients: Vec<String>,
    },
    /// Copy the whole installation to another store (--to) or from one (--from): accounts,
    /// password hashes, aliases, mailboxes with their UIDVALIDITY, UIDs, MODSEQs and flags,
    /// the queue and the DKIM keys — clients download nothing again. The target must be empty; stop the
    /// server first. LOCATION is a data directory or a postgres:// URL.
    Migrate {
        /// Copy the configured store to LOCATION.
        #[arg(
            long,
            value_name = "LOCATION",
            required_unless_present = "from",
            conflicts_with = "from"
        )]
        to: Option<String>,
        /// Copy LOCATION into the configured store (which must be empty).
        #[arg(long, value_name = "LOCATION")]
        from: Option<String>,
    },
    /// Import mail into an account (works while the server runs; a second run adds only
    /// what is missing). See README, "Import, export and backup".
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export an account's mail with its flags, keywords and dates (a second run into the
    /// same PATH writes only what is new).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Copy a consistent snapshot of the running server's store (database and message bodies)
    /// into PATH, a new or empty directory. For PostgreSQL, says how to use pg_dump instead.
    Backup { path: PathBuf },
    /// Restore a backup made by `yubin backup` into the configured data_dir, which must be
    /// empty or missing (start the server afterwards). UIDVALIDITY and UIDs are kept.
    Restore { path: PathBuf },
    /// The TLS certificate: which one the server serves, and ACME renewal ([tls] acme).
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Verify the store without changing it (safe while servers run): UIDNEXT above every
    /// UID, no UID reused, no MODSEQ above HIGHESTMODSEQ, quota counters equal to the real
    /// sums, body reference counts equal to their references, every body present with its
    /// size and hash, no unreferenced body files. Prints each problem; exit status 1 if any.
    Check {
        /// Body files without a row younger than this are a delivery in progress, not an
        /// orphan.
        #[arg(long, value_name = "SECS", default_value_t = store::DEFAULT_ORPHAN_GRACE.as_secs())]
        grace: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Show the served certificate: source (self-signed, files or acme), subject, issuer,
    /// names, serial, expiry, and with [tls] acme the last renewal attempt.
    Status,
    /// Ask the running server to obtain a new ACME certificate now, and wait for the outcome
    /// (exit status 1 if it failed). Every listener uses the new certificate at once.
    Renew,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// One pass: expunge old Trash and Junk, POP3-retrieved mail past its period, and move
    /// old INBOX mail to Archive (as configured); prints one line per mailbox touched. Works
    /// while the server runs (it waits for no one: if the server's pass is running, it fails).
    Run {
        /// Print what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this account.
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages: ID, age, size, sender, pending/total recipients, next attempt.
    List,
    /// Show a queued message's envelope and every recipient's status and last error.
    Show { id: i64 },
    /// Retry a message (or every message with --all) now.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        #[arg(long)]
        all: bool,
    },
    /// Delete a message from the queue without delivering it (no bounce is sent).
    Delete { id: i64 },
    /// Make every pending recipient due now (same as `retry --all`).
    Flush,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a Maildir++ tree (Dovecot's, Courier's): INBOX from cur/ and new/, folders
    /// from .Name directories, flags from the `:2,` suffix, keywords via dovecot-keywords,
    /// internal dates from the files' modification times.
    Maildir { path: PathBuf, address: String },
    /// Import an mbox file into one mailbox (INBOX unless --mailbox), with the `From ` line
    /// dates and the Status/X-Status/X-Keywords flags. A directory (as `yubin export mbox`
    /// writes) is imported file by file: NAME.mbox into mailbox NAME.
    Mbox {
        file: PathBuf,
        address: String,
        /// The mailbox to import into (created if missing).
        #[arg(long)]
        mailbox: Option<String>,
        /// How `>From ` lines are unquoted: mboxrd removes one `>` from any `>…>From `
        /// line, mboxo only from `>From `.
        #[arg(long, value_enum, default_value = "mboxrd")]
        variant: crate::mailio::mbox::Variant,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write every mailbox of ADDRESS as a Maildir++ tree under PATH (Dovecot's layout).
    Maildir { address: String, path: PathBuf },
    /// Write every mailbox of ADDRESS as an mboxrd file PATH/NAME.mbox.
    Mbox { address: String, path: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// List the bans in force: address, end, time left, reason, start.
    List,
    /// Ban an address from every listener (an IPv6 address bans its /64).
    Add {
        ip: String,
        /// How long: 90s, 30m, 1h, 2d, 1w.
        #[arg(long = "for", value_name = "DURATION", default_value = "1d")]
        duration: String,
    },
    /// Lift the ban of an address.
    Del { ip: String },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set the account's own limits (overriding the configured defaults). A limit not given
    /// is left as it is; `default` removes the account's own limit.
    Set {
        address: String,
        /// Storage limit: bytes or a size such as 500M, 10G; or `default`.
        #[arg(long, value_name = "SIZE")]
        storage: Option<String>,
        /// Message-count limit, or `default`.
        #[arg(long, value_name = "N")]
        messages: Option<String>,
    },
    /// Remove the account's own limits: the configured defaults apply again.
    Clear { address: String },
    /// Usage, limits and percentage used, of one account or of every account (`--all`).
    /// A limit marked `*` is the account's own; the others are defaults.
    Show {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        address: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DkimAlgorithm {
    Ed25519,
    Rsa,
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Create a signing key for DOMAIN in the store (every node sharing it signs with it) and
    /// print the DNS TXT record to publish.
    Generate {
        domain: String,
        /// The selector (DNS label); default: `y` followed by the number of days since 1970-01-01,
        /// e.g. y20415, so that keys made on different days get different selectors.
        #[arg(long)]
        selector: Option<String>,
        #[arg(long, value_enum, default_value = "ed25519")]
        algorithm: DkimAlgorithm,
    },
    /// List the signing keys (of DOMAIN, or all): domain, selector, algorithm, creation time,
    /// and the DNS TXT record of each.
    List { domain: Option<String> },
    /// Delete the key of DOMAIN with SELECTOR (remove its DNS record only after mail signed
    /// with it has been delivered and read).
    Remove { domain: String, selector: String },
}

/// The administration commands; they work while the server runs.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage the mail domains this server receives mail for.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage accounts (mailbox users who log in with a password).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage aliases (addresses delivered to other local users).
    #[command(subcommand)]
    Alias(AliasCommand),
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a domain, e.g. `yubin domain add example.com`.
    Add {
        /// The domain name.
        domain: String,
    },
    /// List the domains, one per line.
    List,
    /// Delete a domain; refused while it still has users or aliases.
    Del {
        /// The domain name.
        domain: String,
    },
}

/// How the password of `user add` / `user passwd` is chosen.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account. Without --password-stdin a strong password is generated and printed
    /// once. The domain must have been added with `yubin domain add`.
    Add {
        /// The account's address, which is also its login name.
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List the accounts, one address per line.
    List,
    /// Change an account's password (generated and printed unless --password-stdin).
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete an account with all its mailboxes and messages.
    Del { address: String },
    /// Create accounts from FILE (`-` for standard input) with their existing password
    /// hashes, kept in their scheme ({SHA512-CRYPT}, {BLF-CRYPT}, {ARGON2ID}, {PBKDF2}, {SSHA}…;
    /// {PLAIN} is hashed at once) and replaced with argon2id at each user's first login.
    /// Existing accounts are left alone, so a second run adds only what is missing.
    Import {
        file: std::path::PathBuf,
        /// `dovecot-passwd` (`user:{SCHEME}hash:…`, Dovecot's passwd-file) or `csv` (a header
        /// row with `address` and `password_hash` or `password`). Default: from the file name
        /// (`.csv`), else dovecot-passwd.
        #[arg(long, value_enum)]
        format: Option<UserFileFormat>,
        /// Add the domains of the imported addresses that are not this server's yet.
        #[arg(long)]
        create_domains: bool,
        /// The domain of user names without `@` (a per-domain passwd-file).
        #[arg(long)]
        domain: Option<String>,
        /// Accounts per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Write every account with its password hash (as `doveadm pw` writes them) to standard
    /// output or --output (created with mode 0600): the reverse of `user import`.
    Export {
        #[arg(long, value_enum, default_value_t = UserFileFormat::DovecotPasswd)]
        format: UserFileFormat,
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// The account file formats of `yubin user import` and `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserFileFormat {
    Csv,
    DovecotPasswd,
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS to one or more local users. ALIAS `@example.com` is the
    /// domain's catch-all. Adding an existing alias replaces its targets.
    Add {
        /// The alias address, or `@domain` for a catch-all.
        alias: String,
        /// Local users that receive the alias's mail.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases: `ALIAS -> TARGET, TARGET`.
    List,
    /// Delete an alias.
    Del { alias: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_is_global() {
        let cli = Cli::try_parse_from(["yubin", "user", "list", "--config", "/x.toml"]).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/x.toml")));
        assert!(matches!(
            cli.command,
            Command::Admin(AdminCommand::User(UserCommand::List))
        ));
        let cli = Cli::try_parse_from(["yubin", "alias", "add", "@ex.org", "a@ex.org", "b@ex.org"])
            .unwrap();
        match cli.command {
            Command::Admin(AdminCommand::Alias(AliasCommand::Add { alias, targets })) => {
                assert_eq!(alias, "@ex.org");
                assert_eq!(targets, ["a@ex.org", "b@ex.org"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["yubin", "alias", "add", "@ex.org"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["yubin", "queue", "retry", "--all"])
                .unwrap()
                .command,
            Command::Queue(QueueCommand::Retry {
                id: None,
                all: true
            })
        ));
        assert!(Cli::try_parse_from(["yubin", "queue", "retry"]).is_err());
        match Cli::try_parse_from(["yubin", "ban", "add", "192.0.2.1", "--for", "2h"])
            .unwrap()
            .command
        {
            Command::Ban(BanCommand::Add { ip, duration }) => {
                assert_eq!((ip.as_str(), duration.as_str()), ("192.0.2.1", "2h"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Cli::try_parse_from(["yubin", "ban", "add", "192.0.2.1"])
                .unwrap()
                .command,
            Command::Ban(BanCommand::Add { duration, .. }) if duration == "1d"
        ));
        assert!(Cli::try_parse_from(["yubin", "queue", "retry", "3", "--all"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["yubin", "dkim", "generate", "a.test", "--algorithm", "rsa"])
                .unwrap()
                .command,
            Command::Dkim(DkimCommand::Generate {
                algorithm: DkimAlgorithm::Rsa,
                ..
            })
        ));
    }
}
