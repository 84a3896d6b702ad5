//! The embedded store. (Being written.)
use std::path::Path;
use std::sync::Arc;

/// Opens (creating if needed) the store in `data_dir`.
pub fn open(data_dir: &Path) -> Result<Arc<SqliteStore>, store::StoreError> {
    let _ = data_dir;
    todo!()
}

pub struct SqliteStore;
