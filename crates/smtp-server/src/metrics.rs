//! The SMTP command names of the latency histogram (`telemetry::COMMAND_DURATION`): a fixed
//! set, so a client sending junk cannot create new series.

use smtp_proto::Command;
use telemetry::CommandTable;

pub(crate) static COMMANDS: CommandTable = CommandTable::new(
    "smtp",
    &[
        "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
        "HELP", "STARTTLS", "AUTH", "other",
    ],
);

/// The index of `command` in [`COMMANDS`].
pub(crate) fn command_index(command: &Command) -> usize {
    match command {
        Command::Ehlo(_) => 0,
        Command::Helo(_) => 1,
        Command::Mail { .. } => 2,
        Command::Rcpt { .. } => 3,
        Command::Data => 4,
        Command::Bdat { .. } => 5,
        Command::Rset => 6,
        Command::Noop => 7,
        Command::Quit => 8,
        Command::Vrfy(_) => 9,
        Command::Expn(_) => 10,
        Command::Help => 11,
        Command::StartTls => 12,
        Command::Auth { .. } => 13,
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
            COMMANDS.index_of("AUTH"),
            command_index(&Command::Auth {
                mechanism: String::new(),
                initial: None
            })
        );
        assert_eq!(COMMANDS.index_of("QUIT"), command_index(&Command::Quit));
        assert_eq!(COMMANDS.index_of("XYZZY"), OTHER);
    }
}
