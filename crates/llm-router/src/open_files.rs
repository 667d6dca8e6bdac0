//! The process's limit on open files, raised to what the system allows.
//!
//! Every client connection and every upstream connection is a file descriptor. Many systems
//! start a process with a soft limit of 1,024, which a gateway with a few hundred streams in
//! flight reaches; the hard limit is usually far higher, and raising the soft one up to it
//! needs no privilege (Go's runtime and many servers do the same when they start).

/// The soft limit before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
}

/// Some systems report an unlimited hard limit yet refuse a soft one above what the kernel
/// supports; a million descriptors is more than a gateway needs.
const ENOUGH: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit (at most [`ENOUGH`]).
#[cfg(unix)]
pub fn raise() -> std::io::Result<OpenFiles> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let target = limit.rlim_max.min(ENOUGH);
    if target <= before {
        return Ok(OpenFiles { before, now: before });
    }
    limit.rlim_cur = target;
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OpenFiles { before, now: target })
}

#[cfg(not(unix))]
pub fn raise() -> std::io::Result<OpenFiles> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no open-file limit to raise here"))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn soft_and_hard() -> (u64, u64) {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in `raise`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        (limit.rlim_cur, limit.rlim_max)
    }

    #[test]
    fn the_soft_limit_rises_to_the_hard_one_and_stays_there() {
        // Start from a low soft limit, as many systems do (lowering needs no privilege).
        let (_, hard) = soft_and_hard();
        let low = hard.min(512);
        let limit = libc::rlimit { rlim_cur: low, rlim_max: hard };
        // SAFETY: setrlimit only reads the struct it is given.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);

        let raised = raise().expect("getrlimit and setrlimit work here");
        let (soft, _) = soft_and_hard();
        assert_eq!(raised, OpenFiles { before: low, now: hard.min(ENOUGH).max(low) });
        assert_eq!(soft, raised.now);
        // A second call finds nothing left to do.
        assert_eq!(raise().expect("again"), OpenFiles { before: soft, now: soft });
    }
}
