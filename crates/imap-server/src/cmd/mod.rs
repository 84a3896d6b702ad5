//! One file per command group; handlers are thin: they call the store and queue responses.

pub(crate) mod any;
pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod catenate;
pub(crate) mod copy;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod fetch_binary;
pub(crate) mod fetch_partial;
pub(crate) mod idle;
pub(crate) mod imapurl;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod notify;
pub(crate) mod quota;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod seq;
pub(crate) mod sort;
pub(crate) mod store;
pub(crate) mod thread;
pub(crate) mod urlauth;
pub(crate) mod urlfetch_binary;
