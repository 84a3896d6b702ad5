//! Running as an unprivileged user (`[server] user`, `group`): started as root (by systemd or
//! an init script), yubin binds every listening port first (ports below 1024 need root), then
//! makes sure the data directory belongs to that user, then gives up root for good — the
//! supplementary groups, the group, then the user (in that order: once the user id is
//! dropped, the group can no longer be changed) — and checks that root cannot be regained
//! before it opens the store or reads anything a client can influence.
//!
//! Started as any other user, the setting is ignored (with a log line): there is nothing to
//! give up, and the ports must then be unprivileged or granted with CAP_NET_BIND_SERVICE.

use std::path::Path;

use anyhow::{Context, bail};
use nix::unistd::{self, Gid, Group, Uid, User};
use serde::Deserialize;

use crate::config::Config;

/// The `[server]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// The user to run as once the ports are bound (only when started as root).
    pub user: Option<String>,
    /// Its group; default: the user's primary group.
    pub group: Option<String>,
}

impl ServerSection {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.group.is_some() && self.user.is_none() {
            bail!("[server] group needs [server] user");
        }
        if self
            .user
            .as_deref()
            .is_some_and(|u| u.is_empty() || u == "root")
        {
            bail!("[server] user must name an unprivileged user (not root)");
        }
        Ok(())
    }
}

/// Who the process becomes.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// The user to switch to, `None` when none is configured or the process is not root.
pub fn plan(section: &ServerSection) -> anyhow::Result<Option<Target>> {
    let Some(name) = &section.user else {
        return Ok(None);
    };
    if !unistd::geteuid().is_root() {
        tracing::info!(user = %name, uid = unistd::geteuid().as_raw(), "[server] user is ignored: not started as root, nothing to give up");
        return Ok(None);
    }
    let user = User::from_name(name)
        .with_context(|| format!("cannot look up [server] user {name:?}"))?
        .with_context(|| {
            format!("[server] user {name:?} does not exist (create it: useradd --system --home-dir /var/lib/yubin --shell /usr/sbin/nologin {name})")
        })?;
    if user.uid.is_root() {
        bail!("[server] user {name:?} has uid 0: choose an unprivileged user");
    }
    let gid = match &section.group {
        None => user.gid,
        Some(g) => {
            Group::from_name(g)
                .with_context(|| format!("cannot look up [server] group {g:?}"))?
                .with_context(|| format!("[server] group {g:?} does not exist"))?
                .gid
        }
    };
    if gid.as_raw() == 0 {
        bail!("[server] group must not be root's group (gid 0)");
    }
    Ok(Some(Target {
        name: name.clone(),
        uid: user.uid,
        gid,
    }))
}

/// Binds every configured listening address now, as root; `serve` picks the sockets up.
pub fn prebind(config: &Config) -> anyhow::Result<()> {
    let l = &config.listen;
    let lists: [(&'static str, &Vec<std::net::SocketAddr>); 9] = [
        ("smtp", &l.smtp),
        ("submission", &l.submission),
        ("submissions", &l.submissions),
        ("pop3", &l.pop3),
        ("pop3s", &l.pop3s),
        ("imap", &l.imap),
        ("imaps", &l.imaps),
        ("https", &l.https),
        ("http", &l.http),
    ];
    for (name, addrs) in lists {
        for &addr in addrs {
            crate::listeners::prebind(addr)
                .map_err(|e| anyhow::anyhow!(crate::listeners::bind_error(name, addr, &e)))?;
        }
    }
    Ok(())
}

/// The data directory must belong to the target user: it is created (and given to the user)
/// when missing; one owned by someone else is an error that says how to fix it.
pub fn prepare_data_dir(dir: &Path, target: &Target) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        unistd::chown(dir, Some(target.uid), Some(target.gid))
            .with_context(|| format!("cannot give {} to {}", dir.display(), target.name))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    if meta.uid() != target.uid.as_raw() {
        bail!(
            "data directory {} is owned by uid {}, not by [server] user {} (uid {}): \
             chown -R {}: {}",
            dir.display(),
            meta.uid(),
            target.name,
            target.uid,
            target.name,
            dir.display()
        );
    }
    Ok(())
}

/// Gives up root for good and checks that it took.
pub fn drop_to(target: &Target) -> anyhow::Result<()> {
    // Supplementary groups first (root's would otherwise stay), then the group, then the
    // user. glibc applies each call to every thread of the process.
    unistd::setgroups(&[target.gid]).context("setgroups failed")?;
    unistd::setgid(target.gid).context("setgid failed")?;
    unistd::setuid(target.uid).context("setuid failed")?;
    verify(target)?;
    tracing::info!(user = %target.name, uid = target.uid.as_raw(), gid = target.gid.as_raw(), "dropped root privileges");
    Ok(())
}

/// Refuses to go on unless real, effective and saved ids are all the target's and root
/// cannot be regained.
fn verify(target: &Target) -> anyhow::Result<()> {
    let uids = unistd::getresuid().context("getresuid failed")?;
    let gids = unistd::getresgid().context("getresgid failed")?;
    let uid_ok = [uids.real, uids.effective, uids.saved]
        .iter()
        .all(|u| *u == target.uid);
    let gid_ok = [gids.real, gids.effective, gids.saved]
        .iter()
        .all(|g| *g == target.gid);
    if !uid_ok || !gid_ok {
        bail!(
            "the switch to {} did not take (uids {uids:?}, gids {gids:?}): refusing to run as root",
            target.name
        );
    }
    if unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!(
            "root could be regained after the switch to {}: refusing to run",
            target.name
        );
    }
    let groups = unistd::getgroups().context("getgroups failed")?;
    if groups.iter().any(|g| *g != target.gid) {
        bail!("supplementary groups remain after the switch ({groups:?}): refusing to run");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_needs_user_and_root_is_refused() {
        let s = ServerSection {
            user: None,
            group: Some("yubin".into()),
        };
        assert!(s.validate().is_err());
        let s = ServerSection {
            user: Some("root".into()),
            group: None,
        };
        assert!(s.validate().is_err());
        let s = ServerSection {
            user: Some("yubin".into()),
            group: None,
        };
        s.validate().unwrap();
        assert!(plan(&ServerSection::default()).unwrap().is_none());
    }
}
