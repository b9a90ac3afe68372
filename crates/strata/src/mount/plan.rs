//! What to mount, as data: the pure half of mounting, unit-tested without root.

use std::ffi::OsStr;
use std::path::PathBuf;

/// The kernel's limit on lower layers in one overlay (`OVL_MAX_STACK`).
pub const MAX_LOWERS: usize = 500;

/// How a [`MountPlan`] is handed to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `mount(2)` with one data string, as dockerd does: fits in a page, no `,` or `:` in paths.
    Classic,
    /// `fsopen`/`fsconfig`: one `lowerdir+` call per lower layer (Linux 6.8 and later).
    LowerdirPlus,
}

/// An OverlayFS mount: lower layers uppermost first, and an upper/work pair unless read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// `lowerdir`, uppermost first.
    pub lowers: Vec<PathBuf>,
    /// `upperdir` and `workdir`; `None` mounts read-only.
    pub upper: Option<(PathBuf, PathBuf)>,
    /// Prepend `index=off` (the kernel has the option): with the inode index on, an upperdir in
    /// use by another mount gives EBUSY.
    pub index_off: bool,
}

impl MountPlan {
    /// The classic `mount(2)` data string.
    pub fn data(&self) -> String {
        let mut data = String::new();
        if self.index_off {
            data.push_str("index=off,");
        }
        data.push_str("lowerdir=");
        let lowers: Vec<_> = self.lowers.iter().map(|p| p.to_string_lossy()).collect();
        data.push_str(&lowers.join(":"));
        if let Some((upper, work)) = &self.upper {
            data.push_str(&format!(",upperdir={},workdir={}", upper.display(), work.display()));
        }
        data
    }

    /// The `fsconfig` calls of the new mount API, in order.
    pub fn params(&self) -> Vec<(&'static str, &OsStr)> {
        let mut params = Vec::with_capacity(self.lowers.len() + 3);
        if self.index_off {
            params.push(("index", OsStr::new("off")));
        }
        params.extend(self.lowers.iter().map(|p| ("lowerdir+", p.as_os_str())));
        if let Some((upper, work)) = &self.upper {
            params.push(("upperdir", upper.as_os_str()));
            params.push(("workdir", work.as_os_str()));
        }
        params
    }

    /// The classic form when its data fits in a page with its NUL and no path needs escaping;
    /// the new API otherwise.
    pub fn method(&self, page_size: usize) -> Method {
        let paths = self.lowers.iter().chain(self.upper.iter().flat_map(|(u, w)| [u, w]));
        let needs_escape = paths
            .into_iter()
            .any(|p| p.as_os_str().as_encoded_bytes().iter().any(|b| matches!(b, b',' | b':' | b'\\')));
        if needs_escape || self.data().len() > page_size - 1 { Method::LowerdirPlus } else { Method::Classic }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(lowers: usize, rw: bool) -> MountPlan {
        MountPlan {
            lowers: (0..lowers).map(|i| PathBuf::from(format!("/var/lib/strata/overlay2/l/{i:026}"))).collect(),
            upper: rw.then(|| ("/s/overlay2/x/diff".into(), "/s/overlay2/x/work".into())),
            index_off: true,
        }
    }

    #[test]
    fn data_matches_dockerd_option_order() {
        let p = plan(2, true);
        assert_eq!(
            p.data(),
            "index=off,lowerdir=/var/lib/strata/overlay2/l/00000000000000000000000000:/var/lib/strata/overlay2/l/00000000000000000000000001,upperdir=/s/overlay2/x/diff,workdir=/s/overlay2/x/work"
        );
        let ro = plan(1, false);
        assert_eq!(ro.data(), "index=off,lowerdir=/var/lib/strata/overlay2/l/00000000000000000000000000");
    }

    #[test]
    fn params_append_each_lower() {
        let p = plan(3, true);
        let keys: Vec<_> = p.params().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["index", "lowerdir+", "lowerdir+", "lowerdir+", "upperdir", "workdir"]);
        assert_eq!(p.params()[1].1, "/var/lib/strata/overlay2/l/00000000000000000000000000");
    }

    #[test]
    fn method_switches_at_the_page_limit() {
        assert_eq!(plan(10, true).method(4096), Method::Classic);
        assert_eq!(plan(200, true).method(4096), Method::LowerdirPlus);
        let fits = (1..200).take_while(|n| plan(*n, true).data().len() < 4096).last().unwrap();
        assert_eq!(plan(fits, true).method(4096), Method::Classic);
        assert_eq!(plan(fits + 1, true).method(4096), Method::LowerdirPlus);
    }

    #[test]
    fn paths_that_need_escaping_use_the_new_api() {
        let mut p = plan(1, true);
        p.lowers[0] = PathBuf::from("/odd:dir/l/A");
        assert_eq!(p.method(4096), Method::LowerdirPlus);
        p.lowers[0] = PathBuf::from("/odd,dir/l/A");
        assert_eq!(p.method(4096), Method::LowerdirPlus);
    }
}
