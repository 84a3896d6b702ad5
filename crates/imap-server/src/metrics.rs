//! The IMAP command names of the latency histogram (`telemetry::COMMAND_DURATION`): a fixed
//! set, so a client sending junk cannot create new series. The UID forms are their own
//! commands ("UID FETCH"); IDLE's duration is how long the client idled.

use imap_proto::CommandBody as C;
use telemetry::CommandTable;

pub(crate) static COMMANDS: CommandTable = CommandTable::new(
    "imap",
    &[
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "ID",
        "STARTTLS",
        "AUTHENTICATE",
        "LOGIN",
        "ENABLE",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
        "GENURLAUTH",
        "RESETKEY",
        "URLFETCH",
        "NOTIFY",
        "GETQUOTA",
        "GETQUOTAROOT",
        "SETQUOTA",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "UID EXPUNGE",
        "SEARCH",
        "UID SEARCH",
        "FETCH",
        "UID FETCH",
        "STORE",
        "UID STORE",
        "COPY",
        "UID COPY",
        "MOVE",
        "UID MOVE",
        "SORT",
        "UID SORT",
        "THREAD",
        "UID THREAD",
        "CANCELUPDATE",
        "other",
    ],
);

/// The name of `body` (one of [`COMMANDS`]' names).
pub(crate) fn command_name(body: &C) -> &'static str {
    let pick = |uid: bool, plain: &'static str, with_uid: &'static str| {
        if uid { with_uid } else { plain }
    };
    match body {
        C::Capability => "CAPABILITY",
        C::Noop => "NOOP",
        C::Logout => "LOGOUT",
        C::Id(_) => "ID",
        C::StartTls => "STARTTLS",
        C::Authenticate { .. } => "AUTHENTICATE",
        C::Login { .. } => "LOGIN",
        C::Enable(_) => "ENABLE",
        C::Select { .. } => "SELECT",
        C::Examine { .. } => "EXAMINE",
        C::Create { .. } => "CREATE",
        C::Delete(_) => "DELETE",
        C::Rename { .. } => "RENAME",
        C::Subscribe(_) => "SUBSCRIBE",
        C::Unsubscribe(_) => "UNSUBSCRIBE",
        C::List { .. } => "LIST",
        C::Lsub { .. } => "LSUB",
        C::Namespace => "NAMESPACE",
        C::Status { .. } => "STATUS",
        C::Append { .. } => "APPEND",
        C::Idle => "IDLE",
        C::GenUrlAuth(_) => "GENURLAUTH",
        C::ResetKey { .. } => "RESETKEY",
        C::UrlFetch(_) => "URLFETCH",
        C::Notify(_) => "NOTIFY",
        C::GetQuota(_) => "GETQUOTA",
        C::GetQuotaRoot(_) => "GETQUOTAROOT",
        C::SetQuota { .. } => "SETQUOTA",
        C::Check => "CHECK",
        C::Close => "CLOSE",
        C::Unselect => "UNSELECT",
        C::Expunge => "EXPUNGE",
        C::UidExpunge(_) => "UID EXPUNGE",
        C::Search { uid, .. } => pick(*uid, "SEARCH", "UID SEARCH"),
        C::Fetch { uid, .. } => pick(*uid, "FETCH", "UID FETCH"),
        C::Store { uid, .. } => pick(*uid, "STORE", "UID STORE"),
        C::Copy { uid, .. } => pick(*uid, "COPY", "UID COPY"),
        C::Move { uid, .. } => pick(*uid, "MOVE", "UID MOVE"),
        C::Sort { uid, .. } => pick(*uid, "SORT", "UID SORT"),
        C::Thread { uid, .. } => pick(*uid, "THREAD", "UID THREAD"),
        C::CancelUpdate(_) => "CANCELUPDATE",
    }
}

/// The catch-all: lines that do not parse as a command.
pub(crate) const OTHER: &str = "other";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_in_the_table() {
        assert_eq!(COMMANDS.index_of(command_name(&C::Noop)), 1);
        assert_eq!(
            COMMANDS.index_of(command_name(&C::UidExpunge(
                imap_proto::SequenceSet::from_ids([1u32]).unwrap()
            ))),
            32
        );
        assert_eq!(COMMANDS.index_of("XYZZY"), COMMANDS.index_of(OTHER));
    }
}
