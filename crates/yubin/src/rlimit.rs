//! Raises the open-file limit so that 10,000+ connections fit (each one is a descriptor).

/// Sets the soft RLIMIT_NOFILE to the hard limit; returns the resulting soft limit.
#[allow(unsafe_code)]
pub fn raise_nofile_limit() -> std::io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit struct that lives across the call;
    // getrlimit only writes into it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit struct that lives across the call; setrlimit
        // only reads it. Raising the soft limit up to the hard limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raises_to_a_usable_limit() {
        let n = super::raise_nofile_limit().unwrap();
        assert!(n >= 256, "{n}");
    }
}
