//! SORT and THREAD (RFC 5256) and SORT=DISPLAY (RFC 5957): the keys taken from a message's
//! header ([`keys`]: pure), the base subject ([`subject`]), the sort order ([`order`]), the
//! threading algorithms ([`thread`]), and the one place the header keys are loaded
//! ([`load::load_keys`]).
//!
//! Invariant: the CPU-heavy parts (parsing headers, sorting, threading) run on the blocking
//! pool, never on an async worker, and none of them recurses on message data.

pub(crate) mod keys;
pub(crate) mod load;
pub(crate) mod order;
pub(crate) mod subject;
pub(crate) mod thread;

pub(crate) use keys::MessageKeys;
pub(crate) use load::load_keys;
