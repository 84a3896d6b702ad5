//! `yubin domain|user|alias …`: the administration commands. They open the same store as the
//! running server (SQLite in WAL mode allows both at once), print results on stdout and return
//! one-line errors that say what to do.

use std::io::{BufRead, Write};

use anyhow::{Context, anyhow, bail};
use mail_types::{Address, Domain};
use store::{Directory, StoreError};

use crate::cli::{AdminCommand, AliasCommand, DomainCommand, PasswordSource, UserCommand};

/// Where a command reads a password from and writes its output; real stdin/stdout in `main`,
/// buffers in tests.
pub struct Io<'a> {
    pub input: &'a mut dyn BufRead,
    pub output: &'a mut dyn Write,
}

fn parse_domain(s: &str) -> anyhow::Result<Domain> {
    Domain::parse(s).map_err(|e| anyhow!("{s:?} is not a valid domain: {e}"))
}

fn parse_address(s: &str) -> anyhow::Result<Address> {
    Address::parse(s).map_err(|e| anyhow!("{s:?} is not a valid address: {e}"))
}

fn store_error(what: String, e: StoreError) -> anyhow::Error {
    anyhow!("{what}: {e}")
}

/// Runs one administration command.
pub async fn run(dir: &dyn Directory, cmd: AdminCommand, io: Io<'_>) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Domain(c) => domain(dir, c, io).await,
        AdminCommand::User(c) => user(dir, c, io).await,
        AdminCommand::Alias(c) => alias(dir, c, io).await,
    }
}

async fn domain(dir: &dyn Directory, cmd: DomainCommand, io: Io<'_>) -> anyhow::Result<()> {
    match cmd {
        DomainCommand::Add { domain } => {
            let d = parse_domain(&domain)?;
            match dir.add_domain(&d).await {
                Ok(()) => writeln!(io.output, "added domain {d}")?,
                Err(StoreError::Exists(_)) => bail!("domain {d} already exists"),
                Err(e) => return Err(store_error(format!("cannot add domain {d}"), e)),
            }
        }
        DomainCommand::List => {
            for d in dir
                .list_domains()
                .await
                .map_err(|e| store_error("cannot list domains".into(), e))?
            {
                writeln!(io.output, "{d}")?;
            }
        }
        DomainCommand::Del { domain } => {
            let d = parse_domain(&domain)?;
            if !is_local(dir, &d).await? {
                bail!("no such domain {d}");
            }
            let users = dir
                .list_users()
                .await
                .map_err(|e| store_error("cannot list users".into(), e))?;
            let n = users.iter().filter(|u| u.address.domain() == &d).count();
            if n > 0 {
                bail!(
                    "domain {d} still has {n} user(s); delete them first with `yubin user del ADDRESS`"
                );
            }
            let aliases = dir
                .list_aliases()
                .await
                .map_err(|e| store_error("cannot list aliases".into(), e))?;
            let n = aliases
                .iter()
                .filter(|a| alias_domain(&a.source) == Some(d.as_str()))
                .count();
            if n > 0 {
                bail!(
                    "domain {d} still has {n} alias(es); delete them first with `yubin alias del ALIAS`"
                );
            }
            match dir.delete_domain(&d).await {
                Ok(()) => writeln!(io.output, "deleted domain {d}")?,
                Err(StoreError::NotFound(_)) => bail!("no such domain {d}"),
                Err(e) => return Err(store_error(format!("cannot delete domain {d}"), e)),
            }
        }
    }
    Ok(())
}

async fn is_local(dir: &dyn Directory, d: &Domain) -> anyhow::Result<bool> {
    dir.is_local_domain(d)
        .await
        .map_err(|e| store_error(format!("cannot look up domain {d}"), e))
}

/// The domain part of an alias source (`user@dom` or `@dom`), as stored.
fn alias_domain(source: &str) -> Option<&str> {
    source.rsplit_once('@').map(|(_, d)| d)
}

/// Requires `d` to be served here, else tells how to add it.
async fn require_domain(dir: &dyn Directory, d: &Domain) -> anyhow::Result<()> {
    if !is_local(dir, d).await? {
        bail!("domain {d} is not served here; add it first with `yubin domain add {d}`");
    }
    Ok(())
}

/// The password to set, and whether it was generated (and must be shown once).
fn password(source: &PasswordSource, input: &mut dyn BufRead) -> anyhow::Result<(String, bool)> {
    if !source.password_stdin {
        return Ok((auth::generate_password(), true));
    }
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let pw = line.strip_suffix('\n').unwrap_or(&line);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.is_empty() {
        bail!("empty password on standard input; refusing to set it");
    }
    Ok((pw.to_string(), false))
}

async fn user(dir: &dyn Directory, cmd: UserCommand, io: Io<'_>) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            address,
            password: source,
        } => {
            let a = parse_address(&address)?;
            require_domain(dir, a.domain()).await?;
            let (pw, generated) = password(&source, io.input)?;
            let hash = auth::hash_password(&pw);
            match dir.add_user(&a, &hash).await {
                Ok(_) => {
                    // SCRAM-SHA-256 credentials (RFC 5802 §3) are derived now, from the password.
                    dir.set_scram(&a, &auth::scram_credentials(&pw))
                        .await
                        .map_err(|e| {
                            store_error(format!("cannot store SCRAM credentials of {a}"), e)
                        })?;
                    writeln!(io.output, "added user {a}")?
                }
                Err(StoreError::Exists(_)) => bail!("user {a} already exists"),
                Err(StoreError::NotFound(_)) => bail!(
                    "domain {} is not served here; add it first with `yubin domain add {}`",
                    a.domain(),
                    a.domain()
                ),
                Err(e) => return Err(store_error(format!("cannot add user {a}"), e)),
            }
            if generated {
                writeln!(io.output, "password: {pw}")?;
            }
        }
        UserCommand::List => {
            let users = dir
                .list_users()
                .await
                .map_err(|e| store_error("cannot list users".into(), e))?;
            for u in users {
                writeln!(io.output, "{}", u.address)?;
            }
        }
        UserCommand::Passwd {
            address,
            password: source,
        } => {
            let a = parse_address(&address)?;
            let (pw, generated) = password(&source, io.input)?;
            let hash = auth::hash_password(&pw);
            match dir.set_password(&a, &hash).await {
                Ok(()) => {
                    dir.set_scram(&a, &auth::scram_credentials(&pw))
                        .await
                        .map_err(|e| {
                            store_error(format!("cannot store SCRAM credentials of {a}"), e)
                        })?;
                    writeln!(io.output, "changed the password of {a}")?
                }
                Err(StoreError::NotFound(_)) => bail!("no such user {a}"),
                Err(e) => return Err(store_error(format!("cannot change the password of {a}"), e)),
            }
            if generated {
                writeln!(io.output, "password: {pw}")?;
            }
        }
        UserCommand::Import {
            file,
            format,
            create_domains,
            domain,
            batch,
        } => {
            crate::user_import::run_import(
                dir,
                &file,
                format,
                create_domains,
                domain.as_deref(),
                batch,
                io,
            )
            .await?
        }
        UserCommand::Export { format, output } => {
            crate::user_import::run_export(dir, format, output.as_deref(), io).await?
        }
        UserCommand::Del { address } => {
            let a = parse_address(&address)?;
            match dir.delete_user(&a).await {
                Ok(()) => writeln!(io.output, "deleted user {a} and all its mail")?,
                Err(StoreError::NotFound(_)) => bail!("no such user {a}"),
                Err(e) => return Err(store_error(format!("cannot delete user {a}"), e)),
            }
        }
    }
    Ok(())
}

/// Canonicalises an alias source: `@domain` (catch-all) or an address; returns it with its
/// domain.
fn parse_alias(s: &str) -> anyhow::Result<(String, Domain)> {
    match s.strip_prefix('@') {
        Some(domain) => {
            let d = parse_domain(domain)?;
            Ok((format!("@{d}"), d))
        }
        None => {
            let a = parse_address(s)?;
            Ok((a.to_string(), a.domain().clone()))
        }
    }
}

async fn alias(dir: &dyn Directory, cmd: AliasCommand, io: Io<'_>) -> anyhow::Result<()> {
    match cmd {
        AliasCommand::Add { alias, targets } => {
            let (source, d) = parse_alias(&alias)?;
            require_domain(dir, &d).await?;
            if let Ok(a) = Address::parse(&source) {
                let user = dir
                    .find_user(&a)
                    .await
                    .map_err(|e| store_error(format!("cannot look up {a}"), e))?;
                if user.is_some() {
                    bail!("{a} is a user; an alias cannot have the same address");
                }
            }
            let mut resolved = Vec::with_capacity(targets.len());
            for t in &targets {
                let a = parse_address(t)?;
                let user = dir
                    .find_user(&a)
                    .await
                    .map_err(|e| store_error(format!("cannot look up {a}"), e))?;
                if user.is_none() {
                    bail!(
                        "alias target {a} is not a local user; add it first with `yubin user add {a}`"
                    );
                }
                resolved.push(a);
            }
            match dir.add_alias(&source, &resolved).await {
                Ok(()) => {
                    let list: Vec<String> = resolved.iter().map(|a| a.to_string()).collect();
                    writeln!(io.output, "added alias {source} -> {}", list.join(", "))?;
                }
                Err(StoreError::NotFound(what)) => {
                    bail!("cannot add alias {source}: unknown {what}")
                }
                Err(e) => return Err(store_error(format!("cannot add alias {source}"), e)),
            }
        }
        AliasCommand::List => {
            let aliases = dir
                .list_aliases()
                .await
                .map_err(|e| store_error("cannot list aliases".into(), e))?;
            for a in aliases {
                let list: Vec<String> = a.targets.iter().map(|t| t.to_string()).collect();
                writeln!(io.output, "{} -> {}", a.source, list.join(", "))?;
            }
        }
        AliasCommand::Del { alias } => {
            let (source, _) = parse_alias(&alias)?;
            match dir.delete_alias(&source).await {
                Ok(()) => writeln!(io.output, "deleted alias {source}")?,
                Err(StoreError::NotFound(_)) => bail!("no such alias {source}"),
                Err(e) => return Err(store_error(format!("cannot delete alias {source}"), e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_sources_are_canonical() {
        assert_eq!(parse_alias("@Example.COM").unwrap().0, "@example.com");
        assert_eq!(
            parse_alias("Info@Example.com").unwrap().0,
            "info@example.com"
        );
        assert!(parse_alias("@").is_err());
        assert!(parse_alias("nonsense").is_err());
        assert_eq!(alias_domain("@example.com"), Some("example.com"));
    }

    #[test]
    fn password_from_input_strips_the_line_end_and_refuses_empty() {
        let src = PasswordSource {
            password_stdin: true,
        };
        let mut input: &[u8] = b"s3cret pass\r\nignored\n";
        assert_eq!(
            password(&src, &mut input).unwrap(),
            ("s3cret pass".to_string(), false)
        );
        let mut empty: &[u8] = b"\n";
        assert!(password(&src, &mut empty).is_err());
        let mut eof: &[u8] = b"";
        assert!(password(&src, &mut eof).is_err());
        let generated = PasswordSource {
            password_stdin: false,
        };
        let (pw, shown) = password(&generated, &mut eof).unwrap();
        assert!(shown);
        assert!(pw.len() >= 16);
    }
}
