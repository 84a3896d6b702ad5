//! Validated mail types shared by every yubin crate. No I/O.
//!
//! Addresses follow RFC 5321 §4.1.2 (`Mailbox = Local-part "@" ( Domain / address-literal )`)
//! with the RFC 6531 extension that local parts and domains may be UTF-8.

mod address;

pub use address::{Address, AddressError, Domain};
