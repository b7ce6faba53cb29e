//! A member's secret files (`secret.key`, `admin.token`) are readable by their owner only, also when a
//! file was already there with wider permissions.

use std::os::unix::fs::PermissionsExt;

use boltensor_coordinator::config::{local_federation, write_member_dir, ConsensusTiming};
use boltensor_coordinator::params::Params;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn secret_files_are_owner_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (fed, keys) = local_federation(
        Some(b"secrets-test"),
        4,
        30_000,
        ConsensusTiming::default(),
        Params::default(),
    );
    let member = dir.path().join("member-0");
    write_member_dir(&member, &fed, 0, &keys[0]).expect("member dir");
    let token = boltensor_coordinator::admin_token(&member).expect("admin token");
    assert_eq!(token.len(), 48);
    assert_eq!(mode(&member.join("secret.key")), 0o600);
    assert_eq!(mode(&member.join("admin.token")), 0o600);
    // The public files stay readable.
    assert_eq!(mode(&member.join("federation.json")) & 0o400, 0o400);

    // A key file left world-readable (by hand, or an older version) is tightened when rewritten.
    let key = member.join("secret.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    write_member_dir(&member, &fed, 0, &keys[0]).expect("member dir again");
    assert_eq!(mode(&key), 0o600);
    // The token is kept across restarts.
    assert_eq!(
        boltensor_coordinator::admin_token(&member).expect("again"),
        token
    );
}
