//! The process's open-file limit: read, and raised to the hard limit at start (the TCP cap
//! defaults to half of it).

/// The open-file limit, soft and hard.
#[cfg(target_os = "linux")]
pub fn fd_limit() -> Option<(u64, u64)> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok()
}

/// The open-file limit, soft and hard (not read on this system).
#[cfg(not(target_os = "linux"))]
pub fn fd_limit() -> Option<(u64, u64)> {
    None
}

/// Raises the soft open-file limit to the hard one (Knot, NSD and systemd services do the
/// same: the soft default of 1,024 is there for programs that use select()). Returns the
/// limit before and after; an error leaves it as it was.
#[cfg(target_os = "linux")]
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok((soft, getrlimit(Resource::RLIMIT_NOFILE)?.0))
}

/// Raises the soft open-file limit to the hard one (not done on this system).
#[cfg(not(target_os = "linux"))]
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("not supported on this system"))
}

/// [`raise_fd_limit`], logging what it did (or why it could not).
pub fn raise_and_log() {
    match raise_fd_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!(
                before,
                after,
                "raised the open-file limit to its hard limit"
            )
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
}
