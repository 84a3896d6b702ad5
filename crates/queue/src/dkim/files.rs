//! The upgrade from key files: versions before the store held DKIM keys kept them at
//! `data_dir/dkim/<domain>/<selector>.pem`. [`import_key_files`] copies each file the store
//! does not have yet into it (`yubin serve` and `yubin dkim …` call it at start), with the
//! file's modification time as the key's creation time, so the key that signed before (the
//! newest file) still signs. The files are left in place; once imported they are no longer
//! read, and the admin may delete them.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use store::{DkimKey, DkimKeyStore, StoreError};

use super::keygen::PrivateKey;

/// A key file copied into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedFile {
    pub path: PathBuf,
    pub domain: String,
    pub selector: String,
}

/// The `(domain, selector, path)` of every `*.pem` under `dir`, sorted; none when `dir` does
/// not exist.
fn key_files(dir: &Path) -> std::io::Result<Vec<(String, String, PathBuf)>> {
    let mut out = Vec::new();
    let domains = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for domain in domains {
        let domain = domain?;
        if !domain.file_type()?.is_dir() {
            continue;
        }
        let Some(domain_name) = domain.file_name().to_str().map(DkimKey::canonical_name) else {
            continue;
        };
        for file in std::fs::read_dir(domain.path())? {
            let file = file?;
            let name = file.file_name();
            let Some(selector) = name.to_str().and_then(|n| n.strip_suffix(".pem")) else {
                continue;
            };
            if selector.is_empty() || !file.file_type()?.is_file() {
                continue;
            }
            out.push((
                domain_name.clone(),
                DkimKey::canonical_name(selector),
                file.path(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the key files under `dir` that `keys` lacks into it; returns those copied. A file
/// that cannot be read or is no key is skipped with a warning (the rest still count); a file
/// whose (domain, selector) the store has with a different key is left out with a warning:
/// the store's key is the one every node signs with.
pub async fn import_key_files(
    dir: &Path,
    keys: &dyn DkimKeyStore,
) -> Result<Vec<ImportedFile>, StoreError> {
    let files = key_files(dir).map_err(|e| {
        StoreError::Temporary(format!(
            "cannot read the key files in {}: {e}",
            dir.display()
        ))
    })?;
    let mut imported = Vec::new();
    for (domain, selector, path) in files {
        let pem = match std::fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a DKIM key file; not imported");
                continue;
            }
        };
        if let Some(there) = keys.dkim_signing_key(&domain, Some(&selector)).await? {
            if there.private_key_pem.trim() != pem.trim() {
                tracing::warn!(path = %path.display(), domain, selector, "the store has a different DKIM key for this selector; the file is not imported");
            }
            continue;
        }
        let algorithm = match PrivateKey::from_pem(&pem) {
            Ok(k) => k.algorithm(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "not a DKIM key file; not imported");
                continue;
            }
        };
        let created_at = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        let key = DkimKey {
            domain: domain.clone(),
            selector: selector.clone(),
            algorithm,
            private_key_pem: pem,
            created_at,
        };
        match keys.add_dkim_key(&key).await {
            Ok(()) => {}
            // Another node imported the same file (or a key under that name) meanwhile.
            Err(StoreError::Exists(_)) => continue,
            Err(e) => return Err(e),
        }
        tracing::info!(
            path = %path.display(),
            domain,
            selector,
            "imported a DKIM key file into the store; the store's copy is used from now on and the file may be deleted"
        );
        imported.push(ImportedFile {
            path,
            domain,
            selector,
        });
    }
    Ok(imported)
}
