//! `yubin user import` and `yubin user export`: accounts in bulk, with the password hashes a
//! provider already has (Dovecot passwd-files, LDAP or CSV exports), which cannot be reversed
//! and so are kept in their scheme until each user's first login (`auth::schemes`).
//!
//! An import reads the whole file first and reports every line it refuses (with its number),
//! then creates the accounts in batches, one transaction (one fsync) each, so 100,000 accounts
//! take seconds rather than the hours of one `user add` (and one argon2 hash) each. Existing
//! accounts are left alone: a second run adds only what is missing.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use auth::schemes::{self, Imported};
use mail_types::{Address, Domain};
use store::{Directory, NewUserOutcome};

use crate::admin::Io;
use crate::cli::UserFileFormat;

/// One account read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub address: Address,
    pub password: Imported,
}

/// What the file held: the accounts, and the refused lines (line number, why).
#[derive(Debug, Default)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub refused: Vec<(usize, String)>,
}

/// The format of `path` when not given: `.csv` files are CSV, anything else a passwd-file.
pub fn guess_format(path: &Path) -> UserFileFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => UserFileFormat::Csv,
        _ => UserFileFormat::DovecotPasswd,
    }
}

fn address(user: &str, domain: Option<&Domain>) -> Result<Address, String> {
    let full = match (user.contains('@'), domain) {
        (true, _) => user.to_string(),
        (false, Some(d)) => format!("{user}@{d}"),
        (false, None) => return Err(format!("{user:?} has no domain (use --domain)")),
    };
    Address::parse(&full).map_err(|e| format!("{full:?} is not a valid address: {e}"))
}

fn push(out: &mut Parsed, line: usize, user: &str, hash: &str, domain: Option<&Domain>) {
    let entry = address(user, domain).and_then(|address| {
        schemes::import(hash)
            .map(|password| Entry {
                line,
                address,
                password,
            })
            .map_err(|e| e.to_string())
    });
    match entry {
        Ok(e) => out.entries.push(e),
        Err(why) => out.refused.push((line, why)),
    }
}

/// Dovecot's passwd-file: `user:password:uid:gid:gecos:home:shell:extra_fields`, `#`
/// comments; only the first two fields matter here.
pub fn parse_passwd(text: &str, domain: Option<&Domain>) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        let user = fields.next().unwrap_or("").trim();
        match fields.next() {
            Some(hash) if !hash.is_empty() => push(&mut out, i + 1, user, hash, domain),
            _ => out
                .refused
                .push((i + 1, format!("{user:?} has no password field"))),
        }
    }
    out
}

/// CSV (RFC 4180) with a header row naming `address` and `password_hash` (a hash as
/// `doveadm pw` or crypt(3) writes it) or `password` (plaintext, hashed at import).
pub fn parse_csv(data: &[u8], domain: Option<&Domain>) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let headers = reader.headers().context("cannot read the CSV header row")?;
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let address_col = col("address").ok_or_else(|| anyhow!("the CSV has no `address` column"))?;
    let (hash_col, plain) = match (col("password_hash"), col("password")) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => bail!("the CSV has neither a `password_hash` nor a `password` column"),
    };
    let mut out = Parsed::default();
    for (i, record) in reader.records().enumerate() {
        // Line numbers count the header as line 1.
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i + 2, |p| p.line() as usize);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.refused
                    .push((line, format!("unreadable CSV record: {e}")));
                continue;
            }
        };
        let user = record.get(address_col).unwrap_or("").trim();
        let value = record.get(hash_col).unwrap_or("");
        if value.is_empty() {
            out.refused
                .push((line, format!("{user:?} has no password")));
        } else if plain {
            push(&mut out, line, user, &format!("{{PLAIN}}{value}"), domain);
        } else {
            push(&mut out, line, user, value, domain);
        }
    }
    Ok(out)
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: usize,
    pub existing: usize,
    pub domains_created: usize,
    /// Lines refused, or whose domain is not this server's (without `--create-domains`).
    pub refused: Vec<(usize, String)>,
}

/// Creates the accounts of `parsed` (and, with `create_domains`, their missing domains) in
/// batches of `batch`.
pub async fn import(
    dir: &dyn Directory,
    parsed: Parsed,
    create_domains: bool,
    batch: usize,
) -> anyhow::Result<Report> {
    let mut report = Report {
        refused: parsed.refused,
        ..Report::default()
    };
    // The same address twice in one file: the first wins, the others are refused.
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::with_capacity(parsed.entries.len());
    for e in parsed.entries {
        if seen.insert(e.address.to_string().to_ascii_lowercase()) {
            entries.push(e);
        } else {
            report
                .refused
                .push((e.line, format!("{} appears earlier in the file", e.address)));
        }
    }
    if create_domains {
        let wanted: BTreeSet<Domain> = entries.iter().map(|e| e.address.domain().clone()).collect();
        for d in wanted {
            if !dir.is_local_domain(&d).await.map_err(|e| anyhow!("{e}"))? {
                dir.add_domain(&d)
                    .await
                    .map_err(|e| anyhow!("cannot add domain {d}: {e}"))?;
                report.domains_created += 1;
            }
        }
    }
    let plain = hash_plaintext(&entries);
    for chunk in entries.chunks(batch.max(1)) {
        let users: Vec<(Address, String)> = chunk
            .iter()
            .map(|e| {
                let hash = match &e.password {
                    Imported::Hash(h) => h.clone(),
                    Imported::Plain(_) => plain[&e.line].0.clone(),
                };
                (e.address.clone(), hash)
            })
            .collect();
        let outcomes = dir
            .add_users(&users)
            .await
            .map_err(|e| anyhow!("cannot add accounts: {e}"))?;
        for (e, outcome) in chunk.iter().zip(outcomes) {
            match outcome {
                NewUserOutcome::Created(_) => {
                    report.created += 1;
                    // A plaintext password gives SCRAM credentials at once.
                    if let Some((_, scram)) = plain.get(&e.line) {
                        dir.set_scram(&e.address, scram)
                            .await
                            .map_err(|err| anyhow!("cannot store SCRAM of {}: {err}", e.address))?;
                    }
                }
                NewUserOutcome::Exists => report.existing += 1,
                NewUserOutcome::NoDomain => report.refused.push((
                    e.line,
                    format!(
                        "{}: the domain is not this server's (add it, or use --create-domains)",
                        e.address
                    ),
                )),
            }
        }
    }
    report.refused.sort();
    Ok(report)
}

/// argon2id hashes and SCRAM credentials of the plaintext passwords, by line, computed on
/// every core (each argon2 hash costs ~20 ms of one).
fn hash_plaintext(entries: &[Entry]) -> std::collections::HashMap<usize, (String, String)> {
    let plain: Vec<(usize, &str)> = entries
        .iter()
        .filter_map(|e| match &e.password {
            Imported::Plain(p) => Some((e.line, p.as_str())),
            Imported::Hash(_) => None,
        })
        .collect();
    if plain.is_empty() {
        return Default::default();
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = plain.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = plain
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(line, pw)| {
                            (
                                *line,
                                (auth::hash_password(pw), auth::scram_credentials(pw)),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// `yubin user import`.
pub async fn run_import(
    dir: &dyn Directory,
    file: &Path,
    format: Option<UserFileFormat>,
    create_domains: bool,
    domain: Option<&str>,
    batch: usize,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let domain = domain
        .map(|d| Domain::parse(d).map_err(|e| anyhow!("{d:?} is not a valid domain: {e}")))
        .transpose()?;
    let mut data = Vec::new();
    if file.as_os_str() == "-" {
        io.input.read_to_end(&mut data)?;
    } else {
        data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    let parsed = match format.unwrap_or_else(|| guess_format(file)) {
        UserFileFormat::Csv => parse_csv(&data, domain.as_ref())?,
        UserFileFormat::DovecotPasswd => {
            let text = String::from_utf8(data).context("the passwd-file is not UTF-8")?;
            parse_passwd(&text, domain.as_ref())
        }
    };
    let started = std::time::Instant::now();
    let report = import(dir, parsed, create_domains, batch).await?;
    for (line, why) in &report.refused {
        eprintln!("{}:{line}: {why}", file.display());
    }
    writeln!(
        io.output,
        "imported {} account(s) in {:.1} s; {} already existed; {} domain(s) added; {} line(s) refused",
        report.created,
        started.elapsed().as_secs_f64(),
        report.existing,
        report.domains_created,
        report.refused.len()
    )?;
    if !report.refused.is_empty() {
        bail!(
            "{} line(s) were not imported (listed above)",
            report.refused.len()
        );
    }
    Ok(())
}

/// `yubin user export`: every account as `address:{SCHEME}hash` (passwd-file) or
/// `address,password_hash` (CSV).
pub async fn run_export(
    dir: &dyn Directory,
    format: UserFileFormat,
    output: Option<&Path>,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let mut users = dir
        .list_users()
        .await
        .map_err(|e| anyhow!("cannot list users: {e}"))?;
    users.sort_by_key(|u| u.address.to_string());
    let mut out = Vec::new();
    match format {
        UserFileFormat::DovecotPasswd => {
            for u in &users {
                writeln!(
                    out,
                    "{}:{}::::::",
                    u.address,
                    schemes::to_dovecot(&u.password_hash)
                )?;
            }
        }
        UserFileFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record(["address", "password_hash"])?;
            for u in &users {
                w.write_record([u.address.to_string(), schemes::to_dovecot(&u.password_hash)])?;
            }
            w.flush()?;
        }
    }
    match output {
        None => io.output.write_all(&out)?,
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            // Password hashes: readable by the owner only.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(&out)?;
            f.sync_all()?;
            eprintln!("exported {} account(s) to {}", users.len(), path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_files_are_read_as_dovecot_writes_them() {
        let d = Domain::parse("example.com").unwrap();
        let text = "# users\n\
            alice@example.com:{SHA512-CRYPT}$6$lhocrD7hgdmnnmXP$ee0WN7P4R0hsqqoFMRWD4Zuf1VcdLSt.wWHuniSy/ISs03lcN76.b5VdAPJpq.LvtqD4Br5f5.4nljzqXBEYt.:1000:1000::/home/alice::\n\
            \n\
            bob:{PLAIN}secret\r\n\
            carol@example.com:\n\
            dave@example.com:{MD5-CRYPT}$1$bWUM5w78$QtRvNYQEQPFNClqUItaGZ0\n\
            not an address:{SSHA}8pJL6Me7pyq33jJG50KD6eqnMN+j3jQ9\n";
        let p = parse_passwd(text, Some(&d));
        assert_eq!(p.entries.len(), 2, "{:?}", p.refused);
        assert_eq!(p.entries[0].line, 2);
        assert!(matches!(&p.entries[0].password, Imported::Hash(h) if h.starts_with("$6$")));
        assert_eq!(p.entries[1].address.to_string(), "bob@example.com");
        assert_eq!(p.entries[1].password, Imported::Plain("secret".into()));
        let lines: Vec<usize> = p.refused.iter().map(|r| r.0).collect();
        assert_eq!(lines, [5, 6, 7]);
        // Without --domain a bare user name is refused.
        assert_eq!(parse_passwd("bob:{PLAIN}x\n", None).refused.len(), 1);
    }

    #[test]
    fn csv_with_hashes_or_plaintext() {
        let p = parse_csv(
            b"Address,password_hash,quota\na@example.com,{SSHA}8pJL6Me7pyq33jJG50KD6eqnMN+j3jQ9,1G\n\"b@example.com\",\"$2y$05$mXamjfZufKFsUnVMtXsMNOeZ0y8r1IQcCwqmAjnTc1e69D4bneDta\"\nc@example.com,\n",
            None,
        )
        .unwrap();
        assert_eq!(p.entries.len(), 2);
        assert_eq!(
            p.refused,
            [(4, "\"c@example.com\" has no password".to_string())]
        );
        let p = parse_csv(b"address,password\na@example.com,\"pa,ss\"\n", None).unwrap();
        assert_eq!(p.entries[0].password, Imported::Plain("pa,ss".into()));
        assert!(parse_csv(b"user,hash\n", None).is_err());
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(guess_format(Path::new("u.CSV")), UserFileFormat::Csv);
        assert_eq!(
            guess_format(Path::new("/etc/dovecot/users")),
            UserFileFormat::DovecotPasswd
        );
    }
}
