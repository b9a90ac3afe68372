//! Named points where a test can freeze a strata process to kill it with SIGKILL.
//!
//! Set `STRATA_FAILPOINT=<name>` and the process prints `failpoint <name>` on stderr when it
//! reaches that point, then sleeps until killed. Unset, a failpoint costs one cached lookup.

use std::sync::OnceLock;
use std::time::Duration;

/// Freeze here if `STRATA_FAILPOINT` names this point.
pub(crate) fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("STRATA_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
