//! Bad set-up gets a clear message, not a hang or a panic.

use std::path::PathBuf;

use boltensor_testenv::{locate_bitcoind, Bitcoind, BitcoindOptions, TestEnvError};

#[test]
fn a_bitcoind_path_that_is_not_executable_is_named() {
    let err = locate_bitcoind(Some(&PathBuf::from("/nonexistent/bitcoind"))).expect_err("missing");
    assert!(
        matches!(err, TestEnvError::BitcoindNotExecutable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("/nonexistent/bitcoind"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rpc_port_in_use_is_refused_before_starting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = BitcoindOptions::new(dir.path().join("bitcoind"));
    opts.rpc_port = Some(port);
    let err = Bitcoind::start(opts).await.expect_err("port in use");
    assert!(
        matches!(err, TestEnvError::PortInUse { port: p, .. } if p == port),
        "{err}"
    );
    assert!(err.to_string().contains("already in use"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bitcoind_that_will_not_start_reports_its_log() {
    // A stand-in that fails at once, as a broken bitcoind does.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("fake-bitcoind");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Error: this bitcoind cannot start' >&2\nexit 1\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut opts = BitcoindOptions::new(dir.path().join("data"));
    opts.exe = Some(script);
    let err = Bitcoind::start(opts).await.expect_err("cannot start");
    assert!(matches!(err, TestEnvError::BitcoindExited { .. }), "{err}");
    assert!(
        err.to_string().contains("this bitcoind cannot start"),
        "{err}"
    );
}
