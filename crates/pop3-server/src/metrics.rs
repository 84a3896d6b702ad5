//! The POP3 command names of the latency histogram (`telemetry::COMMAND_DURATION`): a fixed
//! set, so a client sending junk cannot create new series.

use pop3_proto::Command;
use telemetry::CommandTable;

pub(crate) static COMMANDS: CommandTable = CommandTable::new(
    "pop3",
    &[
        "USER", "PASS", "AUTH", "CAPA", "STLS", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET",
        "QUIT", "TOP", "UIDL", "other",
    ],
);

/// The index of `command` in [`COMMANDS`].
pub(crate) fn command_index(command: &Command) -> usize {
    match command {
        Command::User(_) => 0,
        Command::Pass(_) => 1,
        Command::Auth { .. } => 2,
        Command::Capa => 3,
        Command::Stls => 4,
        Command::Stat => 5,
        Command::List(_) => 6,
        Command::Retr(_) => 7,
        Command::Dele(_) => 8,
        Command::Noop => 9,
        Command::Rset => 10,
        Command::Quit => 11,
        Command::Top { .. } => 12,
        Command::Uidl(_) => 13,
    }
}

/// The catch-all: lines that are not a known command.
pub(crate) const OTHER: usize = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_names() {
        assert_eq!(
            COMMANDS.index_of("UIDL"),
            command_index(&Command::Uidl(None))
        );
        assert_eq!(COMMANDS.index_of("QUIT"), command_index(&Command::Quit));
        assert_eq!(COMMANDS.index_of("APOP"), OTHER);
    }
}
