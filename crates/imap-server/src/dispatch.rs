//! The one place that decides which command is allowed in which state (RFC 9051 §3, §6):
//! a command in the wrong state gets a tagged BAD and the session goes on.

use std::io;

use imap_proto::{Code, Command, CommandBody as C, Mailbox, SelectParam, Status, Tag};

use crate::cmd;
use crate::ctx::Ctx;
use crate::session::Session;
use crate::state::{self, State, User};
use crate::wire::Flow;

/// Commands during which EXPUNGE responses must not be sent (RFC 9051 §7.5.1): FETCH, STORE,
/// SEARCH — their UID forms included, to keep it simple and safe — and SORT and THREAD,
/// which answer with message numbers as SEARCH does.
fn allows_expunge(body: &C) -> bool {
    !matches!(
        body,
        C::Fetch { .. } | C::Store { .. } | C::Search { .. } | C::Sort { .. } | C::Thread { .. }
    )
}

/// A state change decided inside the dispatch `match`, applied after it.
enum Transition {
    None,
    Deselect,
    Select(Box<crate::state::Selected>),
}

#[allow(clippy::too_many_arguments)]
async fn select(
    ctx: &mut Ctx,
    tag: Tag,
    user: &mut User,
    mailbox: &Mailbox,
    params: &[SelectParam],
    read_only: bool,
    previous: Option<&mut crate::state::Selected>,
    change: &mut Transition,
) -> Status {
    match cmd::select::select(ctx, tag, user, mailbox, params, read_only, previous).await {
        Ok((sel, status)) => {
            *change = Transition::Select(sel);
            status
        }
        Err(status) => status,
    }
}

/// The mailbox commands valid in both the authenticated and selected states.
async fn mailbox_command(ctx: &mut Ctx, tag: Tag, account: store::AccountId, body: C) -> Status {
    use cmd::mailbox as m;
    match body {
        C::Create {
            mailbox,
            special_use,
        } => m::create(ctx, tag, account, &mailbox, &special_use).await,
        C::Delete(mailbox) => m::delete(ctx, tag, account, &mailbox).await,
        C::Rename { from, to } => m::rename(ctx, tag, account, &from, &to).await,
        C::Subscribe(mailbox) => m::subscribe(ctx, tag, account, &mailbox, true).await,
        C::Unsubscribe(mailbox) => m::subscribe(ctx, tag, account, &mailbox, false).await,
        C::Status {
            mailbox,
            attributes,
        } => m::status(ctx, tag, account, &mailbox, &attributes).await,
        C::List {
            selection,
            reference,
            patterns,
            return_opts,
        } => {
            cmd::list::list(
                ctx,
                tag,
                account,
                &selection,
                &reference,
                &patterns,
                &return_opts,
                false,
            )
            .await
        }
        C::Lsub { reference, pattern } => {
            cmd::list::list(ctx, tag, account, &[], &reference, &[pattern], &[], true).await
        }
        _ => Status::bad(Some(tag), "command not valid in this state"),
    }
}

/// Commands that read the session's view apply the pending change events first, so they see
/// other sessions' flag changes and expunges (and never answer from a stale view). New
/// messages are announced with EXISTS first (RFC 9051 §7.4.1 allows it at any time; only
/// EXPUNGE is held back), so `UID FETCH n:*` includes them (clients poll this way instead of
/// NOOP).
fn syncs_first(body: &C) -> bool {
    matches!(
        body,
        C::Fetch { .. }
            | C::Store { .. }
            | C::Copy { .. }
            | C::Move { .. }
            | C::Search { .. }
            | C::Sort { .. }
            | C::Thread { .. }
    )
}

impl Session {
    pub(crate) async fn command(&mut self, command: Command) -> io::Result<Flow> {
        let Command { tag, body } = command;
        let allow_expunge = allows_expunge(&body);
        if let State::Selected(user, sel) = &mut self.state
            && syncs_first(&body)
        {
            state::sync(&mut self.ctx, user, sel, false).await;
        }
        if let C::Status { attributes, .. } = &body
            && attributes.contains(&imap_proto::StatusAttribute::HighestModSeq)
        {
            // RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) is a CONDSTORE-enabling command.
            let sel = match &self.state {
                State::Selected(_, sel) => Some(&**sel),
                _ => None,
            };
            state::enable_condstore(&mut self.ctx, sel);
        }
        let ctx = &mut self.ctx;
        let io = &mut self.io;
        let mut next: Option<State> = None;
        let mut change = Transition::None;
        let status = match (&mut self.state, body) {
            // Any state — RFC 9051 §6.1.
            (st, C::Capability) => cmd::any::capability(ctx, io, st, tag),
            (_, C::Noop) => Status::ok(Some(tag), "NOOP completed"),
            // RFC 3501 §6.4.1: CHECK (rev1 only) is a NOOP here; every write is durable already.
            (_, C::Check) => Status::ok(Some(tag), "CHECK completed"),
            (_, C::Logout) => {
                ctx.status(Status::bye("yubin IMAP logging out"));
                ctx.status(Status::ok(Some(tag), "LOGOUT completed"));
                self.state = State::Logout;
                return Ok(Flow::Close);
            }
            (_, C::Id(params)) => cmd::any::id(ctx, tag, &params),
            // Not authenticated — RFC 9051 §6.2.
            (State::NotAuthenticated, C::StartTls) => {
                return cmd::auth::starttls(io, ctx, tag).await;
            }
            (State::NotAuthenticated, C::Login { username, password }) => {
                let (st, status) =
                    cmd::auth::login(io.conn.is_tls(), ctx, tag, &username, &password).await;
                next = st;
                status
            }
            (
                State::NotAuthenticated,
                C::Authenticate {
                    mechanism,
                    initial_response,
                },
            ) => {
                match cmd::auth::authenticate(io, ctx, tag, &mechanism, initial_response.as_ref())
                    .await?
                {
                    Some((st, status)) => {
                        next = st;
                        status
                    }
                    None => return Ok(Flow::Close),
                }
            }
            // Authenticated — RFC 9051 §6.3 (also valid when selected, except ENABLE).
            (State::Authenticated(_), C::Enable(caps)) => cmd::any::enable(ctx, tag, &caps),
            (State::Authenticated(_) | State::Selected(..), C::Namespace) => {
                cmd::any::namespace(ctx, tag)
            }
            (State::Authenticated(u), C::Select { mailbox, params }) => {
                select(ctx, tag, u, &mailbox, &params, false, None, &mut change).await
            }
            (State::Selected(u, prev), C::Select { mailbox, params }) => {
                // RFC 9051 §6.3.2: the previous mailbox is closed first.
                ctx.status(Status::ok(None, "previous mailbox closed").with_code(Code::Closed));
                change = Transition::Deselect;
                select(
                    ctx,
                    tag,
                    u,
                    &mailbox,
                    &params,
                    false,
                    Some(prev),
                    &mut change,
                )
                .await
            }
            (State::Authenticated(u), C::Examine { mailbox, params }) => {
                select(ctx, tag, u, &mailbox, &params, true, None, &mut change).await
            }
            (State::Selected(u, prev), C::Examine { mailbox, params }) => {
                ctx.status(Status::ok(None, "previous mailbox closed").with_code(Code::Closed));
                change = Transition::Deselect;
                select(
                    ctx,
                    tag,
                    u,
                    &mailbox,
                    &params,
                    true,
                    Some(prev),
                    &mut change,
                )
                .await
            }
            (
                State::Authenticated(u) | State::Selected(u, _),
                body @ (C::Create { .. }
                | C::Delete(_)
                | C::Rename { .. }
                | C::Subscribe(_)
                | C::Unsubscribe(_)
                | C::Status { .. }
                | C::List { .. }
                | C::Lsub { .. }),
            ) => mailbox_command(ctx, tag, u.account, body).await,
            // Selected — RFC 9051 §6.4.
            (State::Selected(_, sel), C::Close) => {
                change = Transition::Deselect;
                cmd::select::close(ctx, tag, sel).await
            }
            (State::Selected(..), C::Unselect) => {
                change = Transition::Deselect;
                Status::ok(Some(tag), "UNSELECT completed")
            }
            (State::Authenticated(u), C::Append { mailbox, messages }) => {
                cmd::append::append(ctx, tag, u, None, &mailbox, messages).await
            }
            (State::Selected(u, sel), C::Append { mailbox, messages }) => {
                cmd::append::append(ctx, tag, u, Some(&mut **sel), &mailbox, messages).await
            }
            (
                State::Selected(_, sel),
                C::Fetch {
                    uid,
                    sequence_set,
                    attributes,
                    modifiers,
                    partial,
                },
            ) => match partial {
                None => {
                    cmd::fetch::fetch(
                        Some(io),
                        ctx,
                        tag,
                        sel,
                        uid,
                        &sequence_set,
                        &attributes,
                        &modifiers,
                    )
                    .await?
                }
                Some(range) => {
                    let set = &sequence_set;
                    cmd::fetch_partial::fetch(
                        io,
                        ctx,
                        tag,
                        sel,
                        uid,
                        set,
                        range,
                        &attributes,
                        &modifiers,
                    )
                    .await?
                }
            },
            (
                State::Selected(_, sel),
                C::Store {
                    uid,
                    sequence_set,
                    unchanged_since,
                    action,
                    flags,
                },
            ) => {
                cmd::store::store(
                    ctx,
                    tag,
                    sel,
                    uid,
                    &sequence_set,
                    unchanged_since,
                    action,
                    &flags,
                )
                .await
            }
            (
                State::Selected(u, sel),
                C::Copy {
                    uid,
                    sequence_set,
                    mailbox,
                },
            ) => {
                cmd::copy::copy(
                    ctx,
                    tag,
                    u.account,
                    sel,
                    uid,
                    &sequence_set,
                    &mailbox,
                    false,
                )
                .await
            }
            (
                State::Selected(u, sel),
                C::Move {
                    uid,
                    sequence_set,
                    mailbox,
                },
            ) => {
                cmd::copy::copy(ctx, tag, u.account, sel, uid, &sequence_set, &mailbox, true).await
            }
            (State::Selected(_, sel), C::Expunge) => {
                cmd::expunge::expunge(ctx, tag, sel, None).await
            }
            (State::Selected(_, sel), C::UidExpunge(set)) => {
                cmd::expunge::expunge(ctx, tag, sel, Some(&set)).await
            }
            // IDLE runs in `command_idle`.
            (
                State::Selected(_, sel),
                C::Search {
                    uid,
                    return_opts,
                    charset,
                    criteria,
                },
            ) => {
                cmd::search::search(
                    ctx,
                    tag,
                    sel,
                    uid,
                    return_opts.as_deref(),
                    charset.as_deref(),
                    &criteria,
                )
                .await
            }
            // NOTIFY — RFC 5465 §3.1 (authenticated state).
            (State::Authenticated(u), C::Notify(set)) => {
                cmd::notify::notify(ctx, tag, u, None, set).await
            }
            (State::Selected(u, sel), C::Notify(set)) => {
                cmd::notify::notify(ctx, tag, u, Some(sel), set).await
            }
            // URLAUTH — RFC 4467 §7 (authenticated state).
            (State::Authenticated(u) | State::Selected(u, _), C::GenUrlAuth(pairs)) => {
                cmd::urlauth::genurlauth(ctx, tag, u, &pairs).await
            }
            (
                State::Authenticated(u) | State::Selected(u, _),
                C::ResetKey {
                    mailbox,
                    mechanisms,
                },
            ) => cmd::urlauth::resetkey(ctx, tag, u, mailbox.as_ref(), &mechanisms).await,
            (State::Authenticated(u) | State::Selected(u, _), C::UrlFetch(args)) => {
                cmd::urlauth::urlfetch(ctx, tag, u, &args).await
            }
            (
                State::Selected(_, sel),
                C::Sort {
                    uid,
                    return_opts,
                    criteria,
                    charset,
                    search,
                },
            ) => {
                cmd::sort::sort(
                    ctx,
                    tag,
                    sel,
                    uid,
                    return_opts.as_deref(),
                    &criteria,
                    &charset,
                    &search,
                )
                .await
            }
            (
                State::Selected(_, sel),
                C::Thread {
                    uid,
                    algorithm,
                    charset,
                    search,
                },
            ) => cmd::thread::thread(ctx, tag, sel, uid, algorithm, &charset, &search).await,
            (State::Selected(_, sel), C::CancelUpdate(tags)) => {
                cmd::search::cancel_update(tag, sel, &tags)
            }
            // RFC 9208 §4.
            (State::Authenticated(u) | State::Selected(u, _), C::GetQuota(root)) => {
                cmd::quota::getquota(ctx, tag, u, &root).await
            }
            (State::Authenticated(u) | State::Selected(u, _), C::GetQuotaRoot(mailbox)) => {
                cmd::quota::getquotaroot(ctx, tag, u, &mailbox).await
            }
            (State::Authenticated(u) | State::Selected(u, _), C::SetQuota { root, limits }) => {
                cmd::quota::setquota(ctx, tag, u, &root, &limits).await
            }
            (_, _) => Status::bad(Some(tag), "command not valid in this state"),
        };
        // LOGIN and AUTHENTICATE hand over the authenticated state only when they succeed.
        let logged_in = next.is_some();
        if let Some(st) = next {
            self.state = st;
        }
        match change {
            Transition::None => {}
            Transition::Deselect => {
                self.ctx.keywords = None;
                self.state = match std::mem::replace(&mut self.state, State::Logout) {
                    State::Selected(u, _) => State::Authenticated(u),
                    other => other,
                }
            }
            Transition::Select(sel) => {
                self.state = match std::mem::replace(&mut self.state, State::Logout) {
                    State::Authenticated(u) | State::Selected(u, _) => State::Selected(u, sel),
                    other => other,
                }
            }
        }
        self.conclude(status, logged_in, allow_expunge).await
    }

    /// IDLE (RFC 2177) apart from [`command`](Self::command): a session spends most of its
    /// life in it, so it runs in a small future of its own instead of the dispatch future,
    /// which is as large as the largest command's state.
    pub(crate) async fn command_idle(&mut self, command: Command) -> io::Result<Flow> {
        if !matches!(self.state, State::Authenticated(_) | State::Selected(..)) {
            return Box::pin(self.command(command)).await;
        }
        let ctx = &mut self.ctx;
        let io = &mut self.io;
        let ended = match &mut self.state {
            State::Selected(u, sel) => cmd::idle::idle(io, ctx, command.tag, u, Some(sel)).await?,
            State::Authenticated(u) => cmd::idle::idle(io, ctx, command.tag, u, None).await?,
            _ => return Ok(Flow::Close),
        };
        match ended {
            Ok(status) => Box::pin(self.conclude(status, false, true)).await,
            Err(_) => Ok(Flow::Close),
        }
    }

    /// What follows every command that leaves the session open: the CAPABILITY code after a
    /// login, the pending changes of the selected mailbox, NOTIFY's events, the status.
    async fn conclude(
        &mut self,
        status: Status,
        logged_in: bool,
        allow_expunge: bool,
    ) -> io::Result<Flow> {
        let mut status = status;
        if logged_in && status.code.is_none() {
            // RFC 9051 §6.2.3: the capabilities change at login; saves a round trip.
            let caps = cmd::any::capabilities(&self.ctx, &self.io, &self.state);
            status = status.with_code(Code::Capability(caps));
        }
        if let State::Selected(user, sel) = &mut self.state {
            state::sync(&mut self.ctx, user, sel, allow_expunge).await;
            if self.ctx.keywords.as_ref().is_some_and(|k| k.needs_trim()) {
                crate::keywords::trim(&mut self.ctx, &sel.view.keywords_in_use());
            }
        }
        cmd::notify::after_command(&mut self.ctx, &mut self.state).await;
        self.ctx.status(status);
        Ok(Flow::Continue)
    }
}
