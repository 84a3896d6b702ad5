//! Writes of the per-blob message facts cache (`message_facts`, schema v6).

use rusqlite::params;
use store::{BlobId, MessageFacts, StoreResult};

use crate::db::Db;
use crate::writer::Tx;

/// Caches `facts` per blob, replacing older rows. A blob that is gone by now (its last message
/// expunged) is skipped: the row would have nothing to describe.
pub fn put(tx: &mut Tx<'_>, facts: &[(BlobId, MessageFacts)]) -> StoreResult<()> {
    let mut stmt = tx
        .conn
        .prepare_cached(
            "INSERT OR REPLACE INTO message_facts (blob_hash, version, header, envelope,
                 envelope_utf8, body, body_utf8, bodystructure, bodystructure_utf8)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
             WHERE EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)",
        )
        .db()?;
    for (blob, f) in facts {
        stmt.execute(params![
            blob.0,
            f.version,
            f.header,
            f.envelope,
            f.envelope_utf8,
            f.body,
            f.body_utf8,
            f.bodystructure,
            f.bodystructure_utf8,
        ])
        .db()?;
    }
    Ok(())
}
