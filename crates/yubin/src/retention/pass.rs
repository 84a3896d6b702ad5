//! One retention pass: for each account, the messages its policy says are due, removed in
//! batches of `batch_size` (one store transaction each) with a pause between batches, through
//! the ordinary `expunge` and `move_messages` calls — so the change log, MODSEQs and the
//! EXPUNGE/VANISHED every IMAP session (IDLE included) sees are those of any expunge.
//!
//! "Now" is the clock shifted by `YUBIN_RETENTION_CLOCK_OFFSET` (seconds, may be negative;
//! for tests only: they shift retention's clock by days instead of waiting).

use std::time::Duration;

use mail_types::Address;
use store::{AgeBasis, INBOX, LeaseGuard, MailboxInfo, SpecialUse, Store, Uid, UnixTime};

use super::{Days, Retention};

/// The environment variable that shifts retention's clock (testing only).
pub const CLOCK_ENV: &str = "YUBIN_RETENTION_CLOCK_OFFSET";

/// Retention's "now": the system clock plus [`CLOCK_ENV`] seconds.
pub fn now() -> UnixTime {
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let offset = std::env::var(CLOCK_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    real.saturating_add(offset)
}

/// Accounts read per page of a pass.
const USERS_PER_PAGE: usize = 500;

/// What a rule does with the messages it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Expunge from `\Trash` by save date.
    Trash,
    /// Expunge from `\Junk` by save date.
    Junk,
    /// Expunge from INBOX by first POP3 retrieval.
    Pop3,
    /// Move from INBOX to `\Archive` by save date.
    Archive,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Trash => "trash",
            Rule::Junk => "junk",
            Rule::Pop3 => "pop3",
            Rule::Archive => "archive",
        }
    }
}

/// What a pass did (or, dry, would do) in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub address: String,
    pub mailbox: String,
    pub rule: Rule,
    pub count: usize,
}

/// How a pass runs.
pub struct Options<'a> {
    pub now: UnixTime,
    /// Only list what is due.
    pub dry_run: bool,
    pub batch_size: usize,
    pub batch_pause: Duration,
    /// Stop when this lease is lost (another node took over).
    pub lease: Option<&'a LeaseGuard>,
}

/// Runs the policies of every account (or only `only`); returns what was done per mailbox
/// with something due. Stops early, with what was done so far, when the lease is lost.
pub async fn run(
    store: &dyn Store,
    config: &Retention,
    only: Option<&Address>,
    opts: &Options<'_>,
) -> anyhow::Result<Vec<Outcome>> {
    // Every account, a page at a time: a pass over 100,000 accounts holds 500 records, not
    // all of them.
    let mut page = match only {
        Some(a) => match store.find_user(a).await? {
            Some(u) => vec![u],
            None => anyhow::bail!("no such account: {a}"),
        },
        None => store.list_users_after(None, USERS_PER_PAGE).await?,
    };
    // The users' own POP3 choices (account pages), read once per pass.
    let choices: std::collections::HashMap<String, Days> = store
        .pop3_expire_choices()
        .await?
        .into_iter()
        .map(|(a, c)| {
            (
                a.to_string().to_ascii_lowercase(),
                super::choices::days_of(c),
            )
        })
        .collect();
    let mut out = Vec::new();
    'pages: loop {
        let next = match (only, page.len() == USERS_PER_PAGE, page.last()) {
            (None, true, Some(last)) => Some(last.address.clone()),
            _ => None,
        };
        for user in std::mem::take(&mut page) {
            if opts.lease.is_some_and(|l| !l.is_held()) {
                tracing::warn!("retention pass stopped: lease lost to another node");
                break 'pages;
            }
            let address = user.address.to_string();
            let policy = config.policy_with(
                &address,
                choices.get(&address.to_ascii_lowercase()).copied(),
            );
            let mailboxes = match store.lookup_mailboxes(user.id).await {
                Ok(m) => m,
                // Deleted meanwhile.
                Err(store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let with_use =
                |u: SpecialUse| mailboxes.iter().filter(move |m| m.special_use == Some(u));
            let inbox = mailboxes.iter().find(|m| m.name == INBOX);
            let archive = with_use(SpecialUse::Archive).next();
            let mut jobs: Vec<(&MailboxInfo, Rule, Days, Option<&MailboxInfo>)> = Vec::new();
            jobs.extend(with_use(SpecialUse::Trash).map(|m| (m, Rule::Trash, policy.trash, None)));
            jobs.extend(with_use(SpecialUse::Junk).map(|m| (m, Rule::Junk, policy.junk, None)));
            if let Some(inbox) = inbox {
                jobs.push((inbox, Rule::Pop3, policy.pop3, None));
                if let Some(archive) = archive {
                    jobs.push((inbox, Rule::Archive, policy.archive, Some(archive)));
                }
            }
            for (mailbox, rule, days, dest) in jobs {
                let Some(age) = days.seconds() else { continue };
                let cutoff = opts.now.saturating_sub(age);
                let count = apply(store, mailbox, rule, cutoff, dest, opts).await?;
                if count == 0 {
                    continue;
                }
                if !opts.dry_run {
                    tracing::info!(
                        target: "audit",
                        event = %"retention_expunged",
                        count,
                        account = %address,
                        mailbox = %mailbox.name,
                        rule = rule.name(),
                        "retention removed old messages"
                    );
                }
                out.push(Outcome {
                    address: address.clone(),
                    mailbox: mailbox.name.clone(),
                    rule,
                    count,
                });
            }
        }
        match next {
            Some(after) => page = store.list_users_after(Some(&after), USERS_PER_PAGE).await?,
            None => break,
        }
    }
    Ok(out)
}

/// Removes (or counts) the messages of `mailbox` due under `rule`; returns how many.
async fn apply(
    store: &dyn Store,
    mailbox: &MailboxInfo,
    rule: Rule,
    cutoff: UnixTime,
    dest: Option<&MailboxInfo>,
    opts: &Options<'_>,
) -> anyhow::Result<usize> {
    let basis = match rule {
        Rule::Pop3 => AgeBasis::Retrieved,
        _ => AgeBasis::Saved,
    };
    if opts.dry_run {
        let all = store
            .aged_messages(mailbox.id, basis, cutoff, usize::MAX >> 1)
            .await?;
        return Ok(all.len());
    }
    let mut total = 0;
    loop {
        if opts.lease.is_some_and(|l| !l.is_held()) {
            break;
        }
        let uids = store
            .aged_messages(mailbox.id, basis, cutoff, opts.batch_size.max(1))
            .await?;
        if uids.is_empty() {
            break;
        }
        let done: Vec<Uid> = match dest {
            Some(to) => store
                .move_messages(mailbox.id, &uids, to.id)
                .await?
                .into_iter()
                .map(|(from, _)| from)
                .collect(),
            None => store.expunge(mailbox.id, &uids).await?,
        };
        total += done.len();
        // Removed meanwhile by a session: nothing left to do for these. A batch that
        // removed nothing would come back the same: stop.
        if done.is_empty() {
            break;
        }
        // Between transactions: sessions' writes go first.
        tokio::time::sleep(opts.batch_pause).await;
    }
    Ok(total)
}
