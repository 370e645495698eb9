//! File modes for what holds secrets: the keys directory (0700) and its files, the database and
//! its WAL (0600). Modes are tightened even when the files already exist with looser ones, and
//! every change is logged, so an operator sees what was fixed.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Sets `path` to `mode` when it is group- or world-accessible (or otherwise differs in those
/// bits); returns the previous mode when it changed it. A missing file is not an error.
pub fn tighten(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 == mode & 0o077 && current & 0o700 == mode & 0o700 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    tracing::warn!(
        path = %path.display(),
        from = %format!("{current:04o}"),
        to = %format!("{mode:04o}"),
        "tightened the mode of a file holding secrets"
    );
    Ok(Some(current))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn loose_modes_are_tightened_and_reported() {
        let dir = tempfile::tempdir().expect("dir");
        let f = dir.path().join("db");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(super::tighten(&f, 0o600).expect("tighten"), Some(0o644));
        let mode = std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(super::tighten(&f, 0o600).expect("again"), None);
        assert_eq!(
            super::tighten(&dir.path().join("missing"), 0o600).expect("missing"),
            None
        );
    }
}
