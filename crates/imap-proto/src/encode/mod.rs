//! Response encoding: typed responses written as bytes, with the string form (atom, quoted,
//! literal, NIL) chosen by the grammar and by whether the client accepts UTF-8.

mod bodystructure;
mod code;
mod envelope;
mod fetch;
mod response;
mod string;
mod thread;

pub use bodystructure::{
    BodyFields, BodyStructure, Disposition, MultipartExt, SingleKind, SinglePartExt,
    write_body_structure,
};
pub use code::Code;
pub use envelope::{Address, Envelope, write_envelope};
pub use fetch::{FetchItem, write_fetch_item};
pub use response::{
    Data, ESearchItem, EncodeOptions, ListExtended, ListItem, MailboxAttribute, NamespaceDesc,
    Response, Status, StatusItem, StatusKind, UrlFetchData, UrlFetchValue, UrlMetadata,
};
pub use string::{
    write_astring, write_literal, write_literal8, write_mailbox, write_nstring, write_string,
};
pub use thread::ThreadNode;
