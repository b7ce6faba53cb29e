//! Secret files (keys, seeds, tokens) are readable by their owner only.
//!
//! A file this project creates is created `0600`; one that already exists with looser permissions (made
//! by hand, restored from a backup, written by an older version) is tightened to `0600` when it is loaded,
//! with a warning (docs/security.md, row 15). [`LnNode::start`](crate::LnNode::start) does this for
//! ldk-node's `keys_seed`; the miner's `l402.key`, the validator's `validator.key` and the registration keys
//! go through `boltensor_miner::load_or_create_secret`, which calls [`tighten_permissions`].

use std::path::Path;

/// The mode of a secret file: read and write for its owner, nothing for anyone else.
pub const SECRET_MODE: u32 = 0o600;

/// Sets `path` to `0600` if anyone but its owner may read or write it. Returns whether it changed the
/// mode; a missing file is left alone (`Ok(false)`).
pub fn tighten_permissions(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SECRET_MODE))?;
        tracing::warn!(path = %path.display(), old_mode = format!("{mode:o}"), "secret file was readable by others: tightened to 0600");
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_loose_secret_file_is_tightened_and_a_missing_one_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("k");
        std::fs::write(&path, b"secret").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(tighten_permissions(&path).expect("tighten"));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!tighten_permissions(&path).expect("again"));
        assert!(!tighten_permissions(&dir.path().join("missing")).expect("missing"));
    }
}
