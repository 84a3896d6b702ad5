//! The one place where store errors become POP3 replies (RFC 2449 §8, RFC 3206 §4).

use pop3_proto::{Reply, RespCode};
use store::StoreError;

pub(crate) fn store_error(error: &StoreError) -> Reply {
    match error {
        // RFC 2449 §8.1.1: another session holds the maildrop.
        StoreError::InUse => Reply::err_code(
            RespCode::InUse,
            "maildrop is locked by another session, try again later",
        ),
        StoreError::Expunged => Reply::err("message was deleted by another session"),
        // RFC 3206 §4: temporary problems, the client may retry.
        StoreError::Temporary(_) => Reply::err_code(
            RespCode::SysTemp,
            "temporary storage problem, try again later",
        ),
        StoreError::OverQuota => Reply::err_code(RespCode::SysTemp, "over quota"),
        StoreError::NotFound(_) | StoreError::Exists(_) | StoreError::Invalid(_) => {
            Reply::err_code(RespCode::SysPerm, "maildrop unavailable")
        }
    }
}
