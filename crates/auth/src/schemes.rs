//! Password hash schemes: yubin's own argon2id, and the hashes providers arrive with from
//! Dovecot (`doveadm pw`), LDAP (`userPassword`) or Unix (`/etc/shadow`), which cannot be
//! reversed and so are kept in their scheme and verified as they are (`yubin user import`).
//! After a successful login with another scheme the password is rehashed to argon2id
//! ([`needs_rehash`]; `[auth] rehash_imported`).
//!
//! The stored form is self-describing:
//! - a modular-crypt string: `$argon2id$…`/`$argon2i$…` (PHC), `$6$…`/`$5$…` (SHA-crypt),
//!   `$2y$…`/`$2b$…`/`$2a$…` (bcrypt), `$pbkdf2-sha256$…`/`$pbkdf2-sha512$…`/`$pbkdf2$…`
//!   (passlib's PBKDF2);
//! - or Dovecot's `{SCHEME}` prefix where the data does not name its algorithm: `{PBKDF2}`
//!   (`$1$salt$rounds$hex`, HMAC-SHA1), `{SSHA}`/`{SSHA256}`/`{SSHA512}` (base64 of the digest
//!   of password+salt, then the salt), `{SHA}`/`{SHA256}`/`{SHA512}` (unsalted).
//!
//! An import accepts those with or without the `{SCHEME}` prefix Dovecot writes, LDAP's
//! `{CRYPT}` prefix, and `{PLAIN}`/`{CLEAR}` plaintext, which is hashed with argon2id at once
//! (a plaintext password is never stored). Digests are compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest as _;
use subtle::ConstantTimeEq;

/// The largest iteration counts accepted on import: a login runs the hash, so an absurd
/// count would make every login of that user a denial of service (these are ~100× the
/// defaults of the tools that write them).
const MAX_SHA_CRYPT_ROUNDS: u32 = 50_000_000;
const MAX_PBKDF2_ROUNDS: u32 = 50_000_000;
const MAX_BCRYPT_COST: u32 = 20;

/// What an imported hash becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Store this string as the password hash.
    Hash(String),
    /// A plaintext password (`{PLAIN}`): hash it with argon2id before storing.
    Plain(String),
}

/// Why an imported hash was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedHash(pub String);

impl std::fmt::Display for UnsupportedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `{SCHEME}` prefix and the rest, if `s` has one.
fn split_prefix(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('{')?;
    let (scheme, data) = rest.split_once('}')?;
    Some((scheme.to_ascii_uppercase(), data))
}

/// Checks an imported hash (as `doveadm pw`, an LDAP export or `/etc/shadow` write it) and
/// returns its stored form.
pub fn import(hash: &str) -> Result<Imported, UnsupportedHash> {
    let hash = hash.trim_end_matches(['\r', '\n']);
    let bad = |why: &str| Err(UnsupportedHash(why.to_string()));
    let Some((scheme, data)) = split_prefix(hash) else {
        // No prefix: a modular-crypt string names its algorithm.
        return match modular(hash) {
            Some(_) => check_cost(hash).map(|()| Imported::Hash(hash.to_string())),
            None => bad("not a recognised hash (expected {SCHEME}… or a $id$ crypt string)"),
        };
    };
    let self_describing = |expected: &[&str]| -> Result<Imported, UnsupportedHash> {
        match modular(data) {
            Some(id) if expected.contains(&id) => {
                check_cost(data).map(|()| Imported::Hash(data.to_string()))
            }
            _ => Err(UnsupportedHash(format!(
                "{{{scheme}}} data is not in that scheme's format"
            ))),
        }
    };
    match scheme.as_str() {
        "SHA512-CRYPT" => self_describing(&["6"]),
        "SHA256-CRYPT" => self_describing(&["5"]),
        "BLF-CRYPT" => self_describing(&["2a", "2b", "2y"]),
        "ARGON2ID" => self_describing(&["argon2id"]),
        "ARGON2I" => self_describing(&["argon2i"]),
        // RFC 2307 `{CRYPT}`: whatever crypt(3) wrote; the modular ones are supported.
        "CRYPT" => self_describing(&[
            "6",
            "5",
            "2a",
            "2b",
            "2y",
            "argon2id",
            "argon2i",
            "pbkdf2",
            "pbkdf2-sha256",
            "pbkdf2-sha512",
        ]),
        "PBKDF2" => match dovecot_pbkdf2_parts(data) {
            Some((_, rounds, _)) if rounds <= MAX_PBKDF2_ROUNDS => {
                Ok(Imported::Hash(format!("{{PBKDF2}}{data}")))
            }
            Some(_) => bad("PBKDF2 rounds beyond the accepted maximum"),
            None => bad("{PBKDF2} data is not $1$salt$rounds$hex"),
        },
        "SSHA" | "SSHA256" | "SSHA512" | "SHA" | "SHA1" | "SHA256" | "SHA512" => {
            let scheme = if scheme == "SHA1" {
                "SHA".into()
            } else {
                scheme
            };
            match (digest_len(&scheme), B64.decode(data)) {
                (Some((len, salted)), Ok(raw))
                    if raw.len() == len || (salted && raw.len() > len) =>
                {
                    Ok(Imported::Hash(format!("{{{scheme}}}{data}")))
                }
                _ => bad("the digest does not decode to the scheme's length"),
            }
        }
        "PLAIN" | "CLEAR" | "CLEARTEXT" => Ok(Imported::Plain(data.to_string())),
        other => Err(UnsupportedHash(format!(
            "scheme {{{other}}} is not supported (the user must set a new password)"
        ))),
    }
}

/// The digest length of a salted or plain SHA scheme, and whether it is salted.
fn digest_len(scheme: &str) -> Option<(usize, bool)> {
    Some(match scheme {
        "SSHA" => (20, true),
        "SSHA256" => (32, true),
        "SSHA512" => (64, true),
        "SHA" => (20, false),
        "SHA256" => (32, false),
        "SHA512" => (64, false),
        _ => return None,
    })
}

/// The identifier of a modular-crypt string (`6` of `$6$…`), for the supported ones.
fn modular(s: &str) -> Option<&str> {
    let id = s.strip_prefix('$')?.split('$').next()?;
    matches!(
        id,
        "6" | "5"
            | "2a"
            | "2b"
            | "2y"
            | "argon2id"
            | "argon2i"
            | "pbkdf2"
            | "pbkdf2-sha256"
            | "pbkdf2-sha512"
    )
    .then_some(id)
}

/// Refuses work factors that would make each login a denial of service.
fn check_cost(s: &str) -> Result<(), UnsupportedHash> {
    let fields: Vec<&str> = s.split('$').collect();
    let too_much = match fields.get(1).copied() {
        Some("5" | "6") => fields
            .get(2)
            .and_then(|f| f.strip_prefix("rounds="))
            .and_then(|r| r.parse::<u32>().ok())
            .is_some_and(|r| r > MAX_SHA_CRYPT_ROUNDS),
        Some("2a" | "2b" | "2y") => fields
            .get(2)
            .and_then(|c| c.parse::<u32>().ok())
            .is_none_or(|c| c > MAX_BCRYPT_COST),
        Some("pbkdf2" | "pbkdf2-sha256" | "pbkdf2-sha512") => fields
            .get(2)
            .and_then(|r| r.parse::<u32>().ok())
            .is_none_or(|r| r > MAX_PBKDF2_ROUNDS),
        _ => false,
    };
    if too_much {
        return Err(UnsupportedHash(
            "the hash's work factor is missing or beyond the accepted maximum".into(),
        ));
    }
    Ok(())
}

/// Dovecot's PBKDF2 data `$1$<salt>$<rounds>$<hex>`: (salt, rounds, key).
fn dovecot_pbkdf2_parts(data: &str) -> Option<(&str, u32, Vec<u8>)> {
    let mut f = data.strip_prefix("$1$")?.split('$');
    let (salt, rounds, hex) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some() {
        return None;
    }
    let key = hex::decode(hex).ok()?;
    (key.len() == 20).then_some((salt, rounds.parse().ok()?, key))
}

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.replace('.', "+"))
        .ok()
}

/// Whether `password` matches the stored hash `stored` in any scheme yubin verifies.
/// CPU-bound (run it on the blocking pool).
pub fn verify(password: &str, stored: &str) -> bool {
    let pw = password.as_bytes();
    if let Some((scheme, data)) = split_prefix(stored) {
        return match scheme.as_str() {
            "PBKDF2" => dovecot_pbkdf2_parts(data).is_some_and(|(salt, rounds, key)| {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt.as_bytes(), rounds, &mut out);
                bool::from(out.ct_eq(&key))
            }),
            s => salted_sha(s, pw, data).unwrap_or(false),
        };
    }
    match modular(stored) {
        Some("argon2id" | "argon2i") => crate::verify_argon2(password, stored),
        Some("5" | "6") => {
            use sha_crypt::PasswordVerifier as _;
            sha_crypt::ShaCrypt::from(sha_crypt::Algorithm::Sha512Crypt)
                .verify_password(pw, stored)
                .is_ok()
        }
        Some("2a" | "2b" | "2y") => bcrypt::verify(pw, stored).unwrap_or(false),
        Some(id @ ("pbkdf2" | "pbkdf2-sha256" | "pbkdf2-sha512")) => {
            passlib_pbkdf2(id, pw, stored).unwrap_or(false)
        }
        _ => false,
    }
}

fn salted_sha(scheme: &str, pw: &[u8], data: &str) -> Option<bool> {
    let (len, salted) = digest_len(scheme)?;
    let raw = B64.decode(data).ok()?;
    if raw.len() < len || (!salted && raw.len() != len) {
        return None;
    }
    let (expected, salt) = raw.split_at(len);
    let digest: Vec<u8> = match len {
        20 => sha1::Sha1::new()
            .chain_update(pw)
            .chain_update(salt)
            .finalize()
            .to_vec(),
        32 => sha2::Sha256::new()
            .chain_update(pw)
            .chain_update(salt)
            .finalize()
            .to_vec(),
        _ => sha2::Sha512::new()
            .chain_update(pw)
            .chain_update(salt)
            .finalize()
            .to_vec(),
    };
    Some(bool::from(digest.ct_eq(expected)))
}

/// passlib's `$pbkdf2[-sha256|-sha512]$<rounds>$<salt ab64>$<key ab64>`.
fn passlib_pbkdf2(id: &str, pw: &[u8], stored: &str) -> Option<bool> {
    let mut f = stored.split('$').skip(2);
    let rounds: u32 = f.next()?.parse().ok()?;
    let salt = ab64_decode(f.next()?)?;
    let key = ab64_decode(f.next()?)?;
    if f.next().is_some() || key.is_empty() || key.len() > 64 || rounds > MAX_PBKDF2_ROUNDS {
        return None;
    }
    let mut out = vec![0u8; key.len()];
    match id {
        "pbkdf2" => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, &salt, rounds, &mut out),
        "pbkdf2-sha256" => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, &salt, rounds, &mut out),
        _ => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, &salt, rounds, &mut out),
    }
    Some(bool::from(out.ct_eq(&key)))
}

/// Whether a successful login should replace the stored hash with a new argon2id one: any
/// scheme but argon2id.
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with("$argon2id$")
}

/// The stored hash in the form `doveadm pw` writes (`{SCHEME}…`), for `yubin user export`
/// and a Dovecot passwd-file.
pub fn to_dovecot(stored: &str) -> String {
    if stored.starts_with('{') {
        return stored.to_string();
    }
    let scheme = match modular(stored) {
        Some("argon2id") => "ARGON2ID",
        Some("argon2i") => "ARGON2I",
        Some("6") => "SHA512-CRYPT",
        Some("5") => "SHA256-CRYPT",
        Some("2a" | "2b" | "2y") => "BLF-CRYPT",
        // passlib's PBKDF2 has no Dovecot scheme; CRYPT is the closest (Dovecot cannot
        // verify it, but the value is kept intact).
        _ => "CRYPT",
    };
    format!("{{{scheme}}}{stored}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "pässword 1";

    /// Written by Dovecot 2.3's `doveadm pw -s SCHEME -p 'pässword 1'`.
    const DOVEADM: &[&str] = &[
        "{SHA512-CRYPT}$6$lhocrD7hgdmnnmXP$ee0WN7P4R0hsqqoFMRWD4Zuf1VcdLSt.wWHuniSy/ISs03lcN76.b5VdAPJpq.LvtqD4Br5f5.4nljzqXBEYt.",
        "{SHA256-CRYPT}$5$7rc1IMsnkc7HLSaB$Z69lowl0hR8Jp5.mT27bulXOCLqBCEFdQxZsVNI/gAA",
        "{BLF-CRYPT}$2y$05$mXamjfZufKFsUnVMtXsMNOeZ0y8r1IQcCwqmAjnTc1e69D4bneDta",
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$PM2xFkPC+wBhnNBrbwwHbA$dT4ILMq/LggmVO2HuJ5Ani8XA9nXSlX6c4TQbifHXbs",
        "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$AwOlecjH7Fgg5o5uuIQoeA$XirYFT8cc8C2599cZnYSTy1PxGNYKA5TvCsVy1pR1Xc",
        "{PBKDF2}$1$q4H7B7uXCxlKKNAL$5000$91bd88159073e6984203b41e1657c02e8c1406fb",
        "{SSHA}8pJL6Me7pyq33jJG50KD6eqnMN+j3jQ9",
        "{SSHA256}fQ7jjonKcHmsfDhO+wicJRMbCKvpyFizOvnD4E221BsImU19",
        "{SSHA512}LqioM+Gu3v46GxnwPovxlATcgCXnWXT0IuIzulqrFzbUZqBo1N5Mr+2JUfl4O4b1TUus3ndsWFhGlQW01KLnXbVyYnY=",
        "{SHA}wBFJYYjnh5eS5Eft5JORpd7Gkko=",
        "{SHA256}f7RERuWhObO3oHciFhtpNCnGhD0FNBL7CyE3AkK4vbA=",
        "{SHA512}CKWQ1bFe+6HuV0fkV78KrhRH5bOjFVbkHBnd8vTWw2lc3YVFx8X2I6wtGQoVpZVuVsftC++RLO5GPIvd7H4Lyg==",
        "{CRYPT}$2y$05$eWmzD9pWI5PUpCENC40FZ.g0gJrboEsN4S5pb6KLJPmDbh02MM0Wy",
    ];

    /// Written by passlib 1.7 (`pbkdf2_sha256.hash('pässword 1')` …).
    const PASSLIB: &[&str] = &[
        "$pbkdf2-sha256$29000$uleqlTLGmFPKOSeEMCZkLA$xRFbxtHXLwg.qTTHhdVQ3akYYrsYxJQlqVN3jaukV.Q",
        "$pbkdf2-sha512$25000$cs75XyvlnHPu/R9jrFXqfQ$LDJuaf9cNTh/RaiFpVXucyGiFrgRe0Ht/urld053TwSMCevClKJA700NG/SkF18oVAezA5jNl4f9NfBRElIrUg",
        "$pbkdf2$131000$GaO0tjaGkFJKaQ2hdO59jw$Pc4OuScWBRYFLjRoshxC0sbsxLE",
        "$6$rounds=656000$VBd6lw9XfUwIJ3TD$vXAJLHX/giXWLGBmGy9bkJzCPZ6ZtOfr5g0H5W1RUXiQWtG8BXQV8N4zQGZGDJQf1bnz1XjlvBVx3qg00lkl91",
    ];

    #[test]
    fn every_doveadm_and_passlib_vector_verifies_and_only_with_its_password() {
        for v in DOVEADM.iter().chain(PASSLIB) {
            let Imported::Hash(stored) = import(v).unwrap_or_else(|e| panic!("{v}: {e}")) else {
                panic!("{v}: not a hash");
            };
            assert!(verify(PW, &stored), "{v} (stored {stored})");
            assert!(!verify("pässword 2", &stored), "{v}");
            assert!(!verify("", &stored), "{v}");
            assert!(needs_rehash(&stored) != stored.starts_with("$argon2id$"));
            // Exported the way Dovecot reads it, imported again: the same stored form.
            assert_eq!(
                import(&to_dovecot(&stored)),
                Ok(Imported::Hash(stored.clone()))
            );
        }
    }

    #[test]
    fn yubins_own_hash_round_trips_and_needs_no_rehash() {
        let h = crate::hash_password(PW);
        assert!(verify(PW, &h) && !needs_rehash(&h));
        assert_eq!(to_dovecot(&h), format!("{{ARGON2ID}}{h}"));
        assert_eq!(import(&to_dovecot(&h)), Ok(Imported::Hash(h)));
    }

    #[test]
    fn plaintext_and_bad_hashes() {
        assert_eq!(import("{PLAIN}pässword 1"), Ok(Imported::Plain(PW.into())));
        assert_eq!(import("{CLEAR}x"), Ok(Imported::Plain("x".into())));
        for bad in [
            "",
            "secret",
            "{MD5-CRYPT}$1$bWUM5w78$QtRvNYQEQPFNClqUItaGZ0",
            "{SHA512-CRYPT}$5$7rc1IMsnkc7HLSaB$Z69lowl0hR8Jp5.mT27bulXOCLqBCEFdQxZsVNI/gAA",
            "{PBKDF2}$1$salt$5000$zz",
            "{SSHA}c2hvcnQ=",
            "{SHA}wBFJYYjnh5eS5Eft5JORpd7Gkko=AAAA",
            "$6$rounds=999999999$salt$hash",
            "$2y$31$mXamjfZufKFsUnVMtXsMNOeZ0y8r1IQcCwqmAjnTc1e69D4bneDta",
            "{NOPE}x",
        ] {
            assert!(import(bad).is_err(), "{bad:?} accepted");
        }
        // Garbage in the store never verifies (and never panics).
        for stored in [
            "",
            "$",
            "{",
            "{SSHA}",
            "{PBKDF2}$1$",
            "$pbkdf2-sha256$x$y$z",
            "$2y$",
        ] {
            assert!(!verify(PW, stored), "{stored:?}");
        }
    }
}
