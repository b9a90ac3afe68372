//! Crafting tarballs byte by byte, including the ones no well-behaved writer would make:
//! `../` names, absolute names, links out of the tree, bad whiteouts.

#![allow(dead_code)]

/// Builds a tar in memory; every field is the caller's.
#[derive(Default)]
pub struct Tarball {
    bytes: Vec<u8>,
}

/// One entry.
#[derive(Clone)]
pub struct E {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
    pub dev: (u32, u32),
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Put the name in a GNU `L` record instead of a PAX `path` when it is long.
    pub gnu_long: bool,
}

impl E {
    pub fn new(kind: u8, name: &str) -> E {
        E {
            name: name.as_bytes().to_vec(),
            kind,
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            data: Vec::new(),
            link: Vec::new(),
            dev: (0, 0),
            xattrs: Vec::new(),
            gnu_long: false,
        }
    }
}

pub fn file(name: &str, data: &str) -> E {
    E { data: data.as_bytes().to_vec(), ..E::new(b'0', name) }
}

pub fn dir(name: &str) -> E {
    E::new(b'5', name)
}

pub fn symlink(name: &str, target: &str) -> E {
    E { link: target.as_bytes().to_vec(), mode: 0o777, ..E::new(b'2', name) }
}

pub fn hardlink(name: &str, target: &str) -> E {
    E { link: target.as_bytes().to_vec(), ..E::new(b'1', name) }
}

impl Tarball {
    pub fn new() -> Tarball {
        Tarball::default()
    }

    pub fn with(mut self, e: E) -> Tarball {
        self.add(&e);
        self
    }

    pub fn add(&mut self, e: &E) {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if e.name.len() > 100 {
            if e.gnu_long {
                let mut name = e.name.clone();
                name.push(0);
                self.raw(b"././@LongLink", b'L', 0o644, 0, 0, 0, &name, b"", (0, 0));
            } else {
                pax.push(("path".into(), e.name.clone()));
            }
        }
        if e.link.len() > 100 {
            pax.push(("linkpath".into(), e.link.clone()));
        }
        for (k, v) in &e.xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in &pax {
                // "<len> key=value\n", where len counts itself.
                let body = k.len() + v.len() + 3;
                let mut len = body + body.to_string().len();
                if len.to_string().len() != body.to_string().len() {
                    len += 1;
                }
                records.extend_from_slice(format!("{len} {k}=").as_bytes());
                records.extend_from_slice(v);
                records.push(b'\n');
            }
            self.raw(b"PaxHeader", b'x', 0o644, 0, 0, 0, &records, b"", (0, 0));
        }
        let size_data = if matches!(e.kind, b'0' | b'7') { e.data.clone() } else { Vec::new() };
        self.raw(&e.name, e.kind, e.mode, e.uid, e.gid, e.mtime, &size_data, &e.link, e.dev);
    }

    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        name: &[u8],
        kind: u8,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: &[u8],
        link: &[u8],
        dev: (u32, u32),
    ) {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], uid);
        octal(&mut h[116..124], gid);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], mtime);
        h[156] = kind;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], u64::from(dev.0));
        octal(&mut h[337..345], u64::from(dev.1));
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = 0;
        self.bytes.extend_from_slice(&h);
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
    }

    /// The archive with its two zero blocks.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b.resize(b.len() + 1024, 0);
        b
    }

    /// The archive cut off `cut` bytes before its end marker.
    pub fn truncated(&self, cut: usize) -> Vec<u8> {
        self.bytes[..self.bytes.len() - cut].to_vec()
    }
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
