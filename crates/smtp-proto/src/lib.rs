//! SMTP codec (being written).
