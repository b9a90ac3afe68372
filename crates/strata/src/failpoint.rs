//! Named points where a test can freeze a strata process to kill it with SIGKILL.
//!
//! Set `STRATA_FAILPOINT=<name>` and the process prints `failpoint <name>` on stderr when it
//! reaches that point, then sleeps until killed. Unset, a failpoint costs one cached lookup.
//!
//! A few points instead stand for a kernel that lacks a feature ([`kernel_lacks`]), so the
//! fallbacks and their errors are tested on a kernel that has everything.

use std::sync::OnceLock;
use std::time::Duration;

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var("STRATA_FAILPOINT").ok()).as_deref()
}

/// Whether `STRATA_FAILPOINT=no-<feature>` asks to behave as if the kernel lacked `feature`.
pub(crate) fn kernel_lacks(feature: &str) -> bool {
    armed().and_then(|a| a.strip_prefix("no-")) == Some(feature)
}

/// Freeze here if `STRATA_FAILPOINT` names this point.
pub(crate) fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
