//! Polling with a deadline: the only way tests and the devnet wait for something.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::TestEnvError;

/// Calls `check` every 50 ms until it returns `Some`, or fails with [`TestEnvError::Timeout`] naming
/// `what` after `timeout`. `check` may itself fail, which ends the wait with that error.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, TestEnvError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, TestEnvError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TestEnvError::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
