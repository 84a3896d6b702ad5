//! Raising this process's open-file limit, so `idle` can hold thousands of sockets.

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
#[allow(unsafe_code)]
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the rlimit struct we pass by valid pointer;
    // RLIMIT_NOFILE is a valid resource. No memory is shared beyond this stack value.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_limit_reaches_hard_limit() {
        let soft = super::raise_nofile().expect("getrlimit");
        assert!(soft >= 64);
        // A second call finds nothing to raise and reports the same limit.
        assert_eq!(super::raise_nofile().expect("getrlimit"), soft);
    }
}
