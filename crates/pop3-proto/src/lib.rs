//! POP3 codec (being written).
