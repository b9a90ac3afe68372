//! Containers against the real peer, dockerd 20.10 (Debian's `docker.io`), on the same data
//! root: the same script run in a container of each gives the same `diff` and, committed, a
//! layer of the same content with the same config and history; dockerd lists, inspects, diffs,
//! starts, commits and removes the containers strata made; strata does the same with dockerd's.
//!
//! Every test imports the Debian rootfs (`common::images::debian_rootfs`) and starts one
//! dockerd. As in images_docker.rs, dockerd is stopped before strata writes to the root.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::{debian_rootfs, sha256};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The lines of a `diff`, sorted: dockerd prints them in a different order on every call.
fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// What differs from dockerd, gathered so that one run shows all of it.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    /// `docker`'s lines equal strata's, or a finding of what each has that the other lacks.
    fn same_lines(&mut self, what: &str, docker: &[String], strata: &[String]) {
        if docker == strata {
            return;
        }
        let only_docker: Vec<&String> = docker.iter().filter(|l| !strata.contains(l)).collect();
        let only_strata: Vec<&String> = strata.iter().filter(|l| !docker.contains(l)).collect();
        let order = if only_docker.is_empty() && only_strata.is_empty() {
            format!("\nthe same lines in another order:\ndocker's: {docker:#?}\nstrata's: {strata:#?}")
        } else {
            String::new()
        };
        self.0.push(format!(
            "{what}: strata's differs from docker's\nonly docker's: {only_docker:#?}\nonly strata's: {only_strata:#?}{order}"
        ));
    }

    /// `docker == strata`, or a finding.
    fn same<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, docker: T, strata: T) {
        if docker != strata {
            self.0.push(format!("{what}: strata's differs from docker's\ndocker's: {docker:?}\nstrata's: {strata:?}"));
        }
    }

    /// Two JSON values alike, or a finding naming the keys that differ (for objects).
    fn same_json(&mut self, what: &str, docker: &Value, strata: &Value) {
        if docker == strata {
            return;
        }
        if let (Some(d), Some(s)) = (docker.as_object(), strata.as_object()) {
            let keys: BTreeSet<&String> = d.keys().chain(s.keys()).filter(|k| d.get(*k) != s.get(*k)).collect();
            let differing: Vec<String> =
                keys.iter().map(|k| format!("{k}: docker's {:?}, strata's {:?}", d.get(*k), s.get(*k))).collect();
            self.0.push(format!("{what}: strata's differs from docker's in\n{}", differing.join("\n")));
        } else {
            self.same(what, docker, strata);
        }
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "{} finding(s):\n\n{}", self.0.len(), self.0.join("\n\n"));
    }
}

/// Import the Debian rootfs with strata as `deb:1`, a shell as its command.
fn import_debian(root: &Root) -> String {
    root.ok(&["import", path_str(&debian_rootfs()), "deb:1", "-c", r#"CMD ["/bin/bash"]"#])
}

/// `strata check` checks every layer directory on disk and finds nothing wrong.
fn assert_clean(root: &Root) {
    let layers = std::fs::read_dir(root.home())
        .unwrap()
        .filter(|e| !["l", ".strata-tmp"].contains(&e.as_ref().unwrap().file_name().to_str().unwrap()))
        .count();
    let report = root.ok(&["check"]);
    assert!(report.ends_with(&format!("{layers} layer(s) checked, 0 finding(s): clean")), "{report}");
}

/// `setxattr(2)`'s number, for perl's `syscall` (the Debian minbase has perl but no setcap).
#[cfg(target_arch = "x86_64")]
const SYS_SETXATTR: u32 = 188;
#[cfg(target_arch = "aarch64")]
const SYS_SETXATTR: u32 = 5;

/// A shell command giving the files named after it `cap_net_bind_service=ep`, as
/// `setcap cap_net_bind_service=ep FILE…` would (a v2 `security.capability`).
fn setcap() -> String {
    format!(
        r#"perl -e 'my $n = "security.capability"; my $v = pack("V5", 0x02000001, 0x400, 0, 0, 0); for my $a (@ARGV) {{ my $f = "$a"; syscall({SYS_SETXATTR}, $f, $n, $v, length($v), 0) == 0 or die "setxattr $f: $!\n" }}'"#
    )
}

/// A script to run in a container of each: its name and the `sh -c` text. Each ends with a
/// command that succeeds.
type Script = (&'static str, String);

fn scripts() -> Vec<Script> {
    let setcap = setcap();
    vec![
        // Docker's own example of `docker diff`, and then some: a file written, appended to,
        // deleted, moved; a directory emptied and refilled (opaque); a symlink, a hard link,
        // a directory made and removed again, a failed chmod; a new file and an old one given
        // a capability (the old one changes in its xattr alone).
        (
            "edits",
            format!(
                "echo \"Hello World\" > /tmp/newfile; echo x >> /etc/issue; rm /etc/debian_version; \
                 rm -rf /var/log/apt; mkdir -p /var/log/apt; touch /var/log/apt/new; mkdir -p /new/dir; \
                 ln -s /etc/issue /new/link; ln /tmp/newfile /tmp/hard; mv /etc/motd /etc/motd2; \
                 chmod 600 /etc/hostname.bak 2>/dev/null; mkdir /tmp/d && touch /tmp/d/f && rm -r /tmp/d; \
                 cp /bin/true /usr/local/bin/captrue && {setcap} /usr/local/bin/captrue /usr/bin/hostname"
            ),
        ),
        // Metadata only (mode, owner, mtime), setuid, IDs too big for a ustar field, a fifo, a
        // device, a hard link to a file of the image, a private directory, a bigger file.
        (
            "metadata",
            "chmod 600 /etc/shells; chown 1:2 /etc/profile; touch -d '2001-02-03 04:05:06' /etc/host.conf; \
             cp /bin/true /usr/local/bin/suid && chmod 4755 /usr/local/bin/suid; \
             echo big > /tmp/bigid && chown 3000000:3000001 /tmp/bigid; mkfifo /tmp/fifo; mknod /tmp/null c 1 3; \
             ln /etc/passwd /tmp/passwd.link; mkdir -m 0750 /opt/private && chown 1000:1000 /opt/private; \
             chmod 0700 /srv; seq 1 20000 > /tmp/numbers"
                .to_owned(),
        ),
        // A 255-byte name; a path over 100 bytes that ustar can split; one over 256 that it
        // cannot; a symlink and a hard link to it (long link names); a space; UTF-8.
        (
            "long-names",
            "n=$(printf 'n%.0s' $(seq 255)); echo long > /tmp/$n; \
             d=/opt/$(printf 'd%.0s' $(seq 60))/$(printf 'e%.0s' $(seq 60)); mkdir -p $d && echo deep > $d/file; \
             p=/opt/long; for i in 1 2 3 4 5 6 7 8; do p=$p/$(printf 'p%.0s' $(seq 40))$i; done; \
             mkdir -p $p && echo deeper > $p/f && ln -s $p/f /tmp/longlink && ln $p/f /tmp/longhard; \
             touch \"/tmp/with space\" \"/tmp/$(printf '\\303\\251t\\303\\251')\""
                .to_owned(),
        ),
        // One type replaced by another: file by directory (opaque), directory by file, symlink
        // by file, file by symlink, directory by symlink, file by empty directory.
        (
            "replaced",
            "rm /etc/issue.net && mkdir /etc/issue.net && echo inside > /etc/issue.net/inside; \
             rm -r /etc/skel && echo skel > /etc/skel; \
             rm /etc/os-release && echo 'PRETTY_NAME=\"replaced\"' > /etc/os-release; \
             rm /etc/issue && ln -s issue.net/inside /etc/issue; \
             rm -r /etc/cron.daily && ln -s /tmp /etc/cron.daily; \
             rm /etc/profile && mkdir /etc/profile"
                .to_owned(),
        ),
        // Whole trees deleted (one whiteout each, all links of one inode on this kernel), a
        // directory emptied of all its children, a tree deleted and made again (opaque) with
        // a directory of the old name below (which hides the old one's children too), the
        // sticky /var/tmp made again (its opaque marker), and files of the init layer deleted.
        (
            "trees",
            "rm -r /usr/share/doc; rm -r /usr/share/man/*; \
             rm -r /etc/apt && mkdir -p /etc/apt/apt.conf.d/deeper && \
             echo 'APT::Keep \"1\";' > /etc/apt/apt.conf.d/99keep; \
             rm -r /var/tmp && mkdir -m 1777 /var/tmp && touch /var/tmp/kept; rm /.dockerenv /etc/mtab"
                .to_owned(),
        ),
    ]
}

/// Lines docker's diff of each script must have: the script did what it is there for.
fn expected_in_diff(name: &str) -> &'static [&'static str] {
    match name {
        "edits" => &["C /usr/bin/hostname", "A /usr/local/bin/captrue", "D /etc/motd", "A /tmp/hard"],
        "metadata" => &["C /etc/host.conf", "C /etc/profile", "A /tmp/bigid", "A /tmp/null", "A /tmp/fifo"],
        "long-names" => &["A /tmp/longhard", "A /tmp/with space", "A /tmp/\u{e9}t\u{e9}"],
        "replaced" => &["C /etc/skel", "A /etc/issue.net/inside", "C /etc/cron.daily", "C /etc/profile"],
        "trees" => &["D /usr/share/doc", "D /etc/apt/apt.conf.d/70debconf", "A /var/tmp/kept", "D /.dockerenv"],
        _ => &[],
    }
}

/// The top row of an image's history, as both tools can show it.
#[derive(Debug, PartialEq)]
struct TopRow {
    created_by: String,
    comment: String,
    /// In bytes.
    size: u64,
    /// The SIZE column of the table, for people.
    shown: String,
    /// How many rows the history has.
    rows: usize,
}

/// The image one side committed of a container.
struct Committed {
    /// Its config, from `save`.
    config: Value,
    /// Its top layer's tar, from `save`.
    layer: Vec<u8>,
    history: TopRow,
}

/// What one side made of one script.
struct Outcome {
    output: String,
    /// `diff`, sorted.
    diff: Vec<String>,
    committed: Option<Committed>,
}

/// Each script run by dockerd (container `d-NAME`, committed as `docker-NAME:1`) then, with
/// dockerd stopped, by strata (`s-NAME`, `strata-NAME:1`), on `root`, where `deb:1` is.
/// Returns, script by script, docker's outcome and strata's; `None` if dockerd is skipped.
fn run_in_both(root: &Root, scripts: &[Script], commit: bool) -> Option<Vec<(Outcome, Outcome)>> {
    let scratch = tempfile::tempdir().unwrap();
    let message = |name: &str| format!("commit of {name}");

    let d = Dockerd::start(root.path())?;
    let mut docker = Vec::new();
    for (name, script) in scripts {
        let container = format!("d-{name}");
        let output = d.docker(&["run", "--network", "none", "--name", &container, "deb:1", "sh", "-c", script]);
        let diff = sorted_lines(&d.docker(&["diff", &container]));
        let history = commit.then(|| {
            let image = format!("docker-{name}:1");
            d.docker(&["commit", "-m", &message(name), &container, &image]);
            let rows = d.docker(&["history", "--no-trunc", "--human=false", "--format", "{{json .}}", &image]);
            let top = json(rows.lines().next().unwrap());
            let shown = d.docker(&["history", "--format", "{{.Size}}", &image]);
            TopRow {
                created_by: top["CreatedBy"].as_str().unwrap().to_owned(),
                comment: top["Comment"].as_str().unwrap().to_owned(),
                size: top["Size"].as_str().unwrap().parse().unwrap(),
                shown: shown.lines().next().unwrap().to_owned(),
                rows: rows.lines().count(),
            }
        });
        docker.push((output, diff, history));
    }
    let docker_archive = scratch.path().join("docker.tar");
    if commit {
        let images: Vec<String> = scripts.iter().map(|(name, _)| format!("docker-{name}:1")).collect();
        let mut args = vec!["save", "-o", path_str(&docker_archive)];
        args.extend(images.iter().map(String::as_str));
        d.docker(&args);
    }
    drop(d);

    let mut strata = Vec::new();
    for (name, script) in scripts {
        let container = format!("s-{name}");
        let output = root.ok(&["run", "--name", &container, "deb:1", "sh", "-c", script]);
        let diff = sorted_lines(&root.ok(&["diff", &container]));
        let history = commit.then(|| {
            let image = format!("strata-{name}:1");
            root.ok(&["commit", "-m", &message(name), &container, &image]);
            let rows = json(&root.ok(&["history", "--format", "json", &image]));
            let top = &rows[0];
            TopRow {
                created_by: top["CreatedBy"].as_str().unwrap().to_owned(),
                comment: top["Comment"].as_str().unwrap().to_owned(),
                size: top["Size"].as_u64().unwrap(),
                shown: strata_top_size(root, &image),
                rows: rows.as_array().unwrap().len(),
            }
        });
        strata.push((output, diff, history));
    }
    let strata_archive = scratch.path().join("strata.tar");
    if commit {
        let images: Vec<String> = scripts.iter().map(|(name, _)| format!("strata-{name}:1")).collect();
        let mut args = vec!["save"];
        args.extend(images.iter().map(String::as_str));
        args.extend(["-o", path_str(&strata_archive)]);
        root.ok(&args);
    }

    let mut tops = [BTreeMap::new(), BTreeMap::new()];
    if commit {
        tops = [saved_tops(&docker_archive), saved_tops(&strata_archive)];
    }
    let mut outcome =
        |side: usize, prefix: &str, name: &str, (output, diff, history): (String, Vec<String>, Option<TopRow>)| {
            let committed = history.map(|history| {
                let (config, layer) = tops[side].remove(&format!("{prefix}-{name}:1")).unwrap();
                Committed { config, layer, history }
            });
            Outcome { output, diff, committed }
        };
    let mut out = Vec::new();
    for (((name, _), theirs), ours) in scripts.iter().zip(docker).zip(strata) {
        out.push((outcome(0, "docker", name, theirs), outcome(1, "strata", name, ours)));
    }
    Some(out)
}

/// The SIZE column of the top row of `strata history` (the table, for people).
fn strata_top_size(root: &Root, image: &str) -> String {
    let out = root.ok(&["history", image]);
    let mut lines = out.lines().map(|l| l.chars().collect::<Vec<char>>());
    let header = lines.next().unwrap();
    let at = |word: &str| -> usize {
        let w: Vec<char> = word.chars().collect();
        header.windows(w.len()).position(|x| x == w.as_slice()).unwrap()
    };
    let (start, end) = (at("SIZE"), at("COMMENT"));
    let row = lines.next().unwrap();
    row[start..end].iter().collect::<String>().trim().to_owned()
}

/// The images of a `docker save` archive by their first name: the config and the top layer's
/// tar, read without extracting the (large) rest.
fn saved_tops(archive: &Path) -> BTreeMap<String, (Value, Vec<u8>)> {
    let read = |wanted: &dyn Fn(&str) -> bool| -> BTreeMap<String, Vec<u8>> {
        let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
        let mut files = BTreeMap::new();
        for e in a.entries_with_seek().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            if wanted(&path) {
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                files.insert(path, bytes);
            }
        }
        files
    };
    let manifest = json(std::str::from_utf8(&read(&|p| p == "manifest.json")["manifest.json"]).unwrap());
    let images: Vec<(String, String, String)> = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let layers = m["Layers"].as_array().unwrap();
            (
                m["RepoTags"][0].as_str().unwrap().to_owned(),
                m["Config"].as_str().unwrap().to_owned(),
                layers.last().unwrap().as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let wanted: BTreeSet<String> = images.iter().flat_map(|(_, c, l)| [c.clone(), l.clone()]).collect();
    let mut files = read(&|p| wanted.contains(p));
    images
        .into_iter()
        .map(|(tag, config, layer)| {
            let config = json(std::str::from_utf8(&files[&config]).unwrap());
            (tag, (config, files.remove(&layer).unwrap()))
        })
        .collect()
}

/// One entry of a layer tar as compared: `content` is all but times (path, type, permission
/// bits, owner, size, link target, device, xattrs, data); `header` is how the header says it
/// beyond that (the whole mode field, user and group names, PAX keys other than times, a link
/// name where the type has none).
struct LayerEntry {
    content: String,
    header: String,
}

fn layer_entries(tar: &[u8]) -> Vec<LayerEntry> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let h = e.header().clone();
        let kind = h.entry_type();
        let (mut uid, mut gid) = (h.uid().unwrap(), h.gid().unwrap());
        let mut xattrs = BTreeMap::new();
        let mut pax_keys = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                let key = ext.key().unwrap().to_owned();
                let value = ext.value_bytes();
                match key.as_str() {
                    "uid" => uid = std::str::from_utf8(value).unwrap().parse().unwrap(),
                    "gid" => gid = std::str::from_utf8(value).unwrap().parse().unwrap(),
                    _ => {}
                }
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
                    xattrs.insert(name.to_owned(), hex);
                }
                if !matches!(key.as_str(), "mtime" | "atime" | "ctime") {
                    pax_keys.push(key);
                }
            }
        }
        let has_link = matches!(kind, tar::EntryType::Link | tar::EntryType::Symlink);
        let dev = matches!(kind, tar::EntryType::Char | tar::EntryType::Block)
            .then(|| (h.device_major().unwrap().unwrap(), h.device_minor().unwrap().unwrap()));
        let size = e.size();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let data = if data.is_empty() { String::new() } else { sha256(&data)[..16].to_owned() };
        let mode = h.mode().unwrap();
        out.push(LayerEntry {
            content: format!(
                "{path} type={} mode={:04o} uid={uid} gid={gid} size={size} link={:?} dev={dev:?} \
                 xattrs={xattrs:?} data={data}",
                kind.as_byte() as char,
                mode & 0o7777,
                link.as_ref().filter(|_| has_link),
            ),
            header: format!(
                "{path} mode-field={mode:o} uname={:?} gname={:?} pax={pax_keys:?} stray-linkname={:?}",
                String::from_utf8_lossy(h.username_bytes().unwrap_or_default()),
                String::from_utf8_lossy(h.groupname_bytes().unwrap_or_default()),
                link.filter(|_| !has_link),
            ),
        });
    }
    out
}

/// A container config without `Hostname` (the container's own short ID).
fn without_hostname(config: &Value) -> Value {
    let mut c = config.clone();
    c.as_object_mut().unwrap().remove("Hostname");
    c
}

/// The last history entry without its time.
fn last_step(config: &Value) -> Value {
    let mut step = config["history"].as_array().unwrap().last().unwrap().clone();
    step.as_object_mut().unwrap().remove("created");
    step
}

/// Compare what both sides committed: the layer's content entry for entry, the config (but
/// the hostname, the time, the container and the top diffID), and the history's top row. Returns how the layers' headers differ beyond
/// content, for the record.
fn compare_commits(findings: &mut Findings, name: &str, docker: &Committed, strata: &Committed) -> Vec<String> {
    let (theirs, ours) = (layer_entries(&docker.layer), layer_entries(&strata.layer));
    let content = |entries: &[LayerEntry]| entries.iter().map(|e| e.content.clone()).collect::<Vec<_>>();
    findings.same_lines(&format!("committed layer of {name}"), &content(&theirs), &content(&ours));
    let headers = theirs
        .iter()
        .zip(&ours)
        .filter(|(t, o)| t.header != o.header)
        .map(|(t, o)| format!("{name}: docker {} | strata {}", t.header, o.header))
        .collect();

    // dockerd's keys, but its version (strata is not dockerd).
    let keys = |c: &Value| -> Vec<String> {
        c.as_object().unwrap().keys().filter(|k| *k != "docker_version").cloned().collect()
    };
    findings.same(&format!("config keys of {name}"), keys(&docker.config), keys(&strata.config));
    for key in ["config", "container_config"] {
        let (theirs, ours) = (without_hostname(&docker.config[key]), without_hostname(&strata.config[key]));
        findings.same_json(&format!("{key} of {name}"), &theirs, &ours);
    }
    for key in ["architecture", "os", "author"] {
        findings.same(&format!("{key} of {name}"), &docker.config[key], &strata.config[key]);
    }
    findings.same_json(&format!("history step of {name}"), &last_step(&docker.config), &last_step(&strata.config));
    let history_len = |c: &Value| c["history"].as_array().unwrap().len();
    findings.same(&format!("history length of {name}"), history_len(&docker.config), history_len(&strata.config));
    let diff_ids = |c: &Value| c["rootfs"]["diff_ids"].as_array().unwrap().clone();
    let (theirs, ours) = (diff_ids(&docker.config), diff_ids(&strata.config));
    findings.same(&format!("diffIDs of {name}"), (theirs.len(), &theirs[0]), (ours.len(), &ours[0]));

    findings.same(&format!("history of {name}"), &docker.history, &strata.history);
    assert_eq!(strata.history.comment, format!("commit of {name}"));
    headers
}

#[test]
fn the_same_script_gives_the_same_diff() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let root = Root::new();
    import_debian(&root);
    let scripts = scripts();
    let Some(outcomes) = run_in_both(&root, &scripts, false) else { return };

    let mut findings = Findings::default();
    for ((name, _), (docker, strata)) in scripts.iter().zip(&outcomes) {
        for line in expected_in_diff(name) {
            assert!(docker.diff.contains(&(*line).to_owned()), "{name}: {line} not in docker diff {:?}", docker.diff);
        }
        findings.same(&format!("output of {name}"), &docker.output, &strata.output);
        findings.same_lines(&format!("diff of {name}"), &docker.diff, &strata.diff);
        // strata's diff of dockerd's container, too.
        let theirs = sorted_lines(&root.ok(&["diff", &format!("d-{name}")]));
        findings.same_lines(&format!("strata diff of dockerd's {name}"), &docker.diff, &theirs);
        // The two containers' configs (the image's merged with the run's): alike but the
        // hostname (each one's short ID).
        let both = json(&root.ok(&["inspect", &format!("d-{name}"), &format!("s-{name}")]));
        let config = |i: usize| without_hostname(&both[i]["Config"]);
        findings.same_json(&format!("container config of {name}"), &config(0), &config(1));
    }
    findings.assert_none();
    eprintln!("the_same_script_gives_the_same_diff: {:?}", started.elapsed());
}

#[test]
fn the_same_changes_commit_to_the_same_layer() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let root = Root::new();
    import_debian(&root);
    let scripts = scripts();
    let Some(outcomes) = run_in_both(&root, &scripts, true) else { return };

    let mut findings = Findings::default();
    let mut headers = Vec::new();
    for ((name, _), (docker, strata)) in scripts.iter().zip(&outcomes) {
        let (theirs, ours) = (docker.committed.as_ref().unwrap(), strata.committed.as_ref().unwrap());
        headers.extend(compare_commits(&mut findings, name, theirs, ours));
        // What dockerd's layers must have, for the comparison to mean something.
        let layer: Vec<String> = layer_entries(&theirs.layer).into_iter().map(|e| e.content).collect();
        let has = |prefix: &str, part: &str| layer.iter().any(|l| l.starts_with(prefix) && l.contains(part));
        match *name {
            "edits" => assert!(has("usr/bin/hostname ", "security.capability") && has("var/log/apt/.wh..wh..opq ", "")),
            "metadata" => assert!(has("tmp/bigid ", "uid=3000000 gid=3000001") && has("tmp/null ", "dev=Some((1, 3))")),
            "trees" => assert!(has("usr/share/.wh.doc ", "") && has("etc/apt/.wh..wh..opq ", "")),
            _ => {}
        }
    }
    if !headers.is_empty() {
        // Not content: dockerd puts the file type bits in the mode field, looks up user and
        // group names on the host, sorts PAX keys, and leaves a whiteout's hard-link name in
        // place (the kernel makes whiteouts links of one inode).
        eprintln!("NOTE: {} layer headers differ from dockerd's beyond content, e.g.:", headers.len());
        for line in headers.iter().take(8) {
            eprintln!("  {line}");
        }
    }
    assert_clean(&root);
    findings.assert_none();
    eprintln!("the_same_changes_commit_to_the_same_layer: {:?}", started.elapsed());
}

/// A container's layer directories (writable and -init), its layer record and its own
/// directory, from its inspect.
fn container_paths(root: &Root, inspect: &Value) -> Vec<PathBuf> {
    let upper = Path::new(inspect["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap());
    let layer = upper.parent().unwrap().to_owned();
    let init = PathBuf::from(format!("{}-init", layer.display()));
    assert!(
        inspect["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap().starts_with(&format!("{}/diff:", init.display()))
    );
    let id = inspect["Id"].as_str().unwrap();
    vec![
        layer,
        init,
        root.path().join("image/overlay2/layerdb/mounts").join(id),
        root.path().join("containers").join(id),
    ]
}

/// The inspect fields both tools take from the container's records.
const RECORDED: &[&str] = &["Id", "Created", "Path", "Args", "Image", "Name", "Driver", "Platform", "GraphDriver"];

/// `docker ps -a` rows by name.
fn docker_ps(d: &Dockerd) -> BTreeMap<String, Value> {
    let out = d.docker(&["ps", "-a", "--no-trunc", "--format", "{{json .}}"]);
    out.lines().map(json).map(|r| (r["Names"].as_str().unwrap().to_owned(), r)).collect()
}

/// The Engine API's `Command` of a `docker ps` row (the CLI shows it Go-quoted).
fn api_command(row: &Value) -> String {
    serde_json::from_str(row["Command"].as_str().unwrap()).unwrap()
}

/// `strata ps -a` rows by name (without the slash).
fn strata_ps(root: &Root) -> BTreeMap<String, Value> {
    let out = json(&root.ok(&["ps", "-a", "--format", "json"]));
    let rows = out.as_array().unwrap().iter().cloned();
    rows.map(|r| (r["Names"][0].as_str().unwrap().trim_start_matches('/').to_owned(), r)).collect()
}

#[test]
fn dockerd_uses_containers_strata_made() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let root = Root::new();
    let image = import_debian(&root);
    let s1 = root.ok(&["create", "--name", "s1", "deb:1", "sh", "-c", "echo from strata"]);
    assert_eq!(root.ok(&["run", "--name", "s2", "deb:1", "sh", "-c", "echo hi > /x"]), "");
    let ours = json(&root.ok(&["inspect", "s1", "s2"]));
    let s2 = ours[1]["Id"].as_str().unwrap().to_owned();
    assert_eq!(ours[0]["Id"], s1.as_str());
    let diff = sorted_lines(&root.ok(&["diff", "s2"]));
    assert!(diff.contains(&"A /x".to_owned()), "{diff:?}");
    let root_diff_s1 = root.ok(&["diff", "s1"]);
    assert_eq!(root_diff_s1, "");
    let paths: Vec<PathBuf> = [&ours[0], &ours[1]].iter().flat_map(|i| container_paths(&root, i)).collect();
    for p in &paths {
        assert!(p.exists(), "{}", p.display());
    }
    // An image strata commits of its container, for dockerd to run.
    root.ok(&["commit", "-m", "by strata", "s2", "by-strata:1"]);
    // A detached container that wrote to both streams, then ended.
    let s3 =
        root.ok(&["run", "-d", "--name", "s3", "deb:1", "sh", "-c", "echo from a detached strata; echo to stderr >&2"]);
    assert_eq!(root.ok(&["wait", "s3"]), "0");
    let strata_ps = strata_ps(&root);

    let Some(d) = Dockerd::start(root.path()) else { return };
    let mut findings = Findings::default();
    // `ps -a`: both, by ID and name, s1 created, s2 exited with 0, with their image and command.
    let ps = docker_ps(&d);
    assert_eq!(ps.keys().collect::<Vec<_>>(), ["s1", "s2", "s3"], "{ps:#?}");
    // `logs` reads strata's json-file log, each stream where it was written.
    let logs = d.try_docker(&["logs", "s3"]);
    findings.same(
        "docker logs s3",
        ("from a detached strata\n".to_owned(), "to stderr\n".to_owned()),
        (String::from_utf8_lossy(&logs.stdout).into_owned(), String::from_utf8_lossy(&logs.stderr).into_owned()),
    );
    assert_eq!(ps["s1"]["ID"], s1.as_str());
    assert_eq!(ps["s2"]["ID"], s2.as_str());
    findings.same("docker ps status of s1", "Created", ps["s1"]["Status"].as_str().unwrap());
    findings.same("docker ps state of s1", "created", ps["s1"]["State"].as_str().unwrap());
    let status = ps["s2"]["Status"].as_str().unwrap();
    findings.same("docker ps status of s2", true, status.starts_with("Exited (0) "));
    findings.same("docker ps state of s2", "exited", ps["s2"]["State"].as_str().unwrap());
    for (name, command) in [("s1", "\"sh -c 'echo from strata'\""), ("s2", "\"sh -c 'echo hi > /x'\"")] {
        findings.same(&format!("docker ps command of {name}"), command, ps[name]["Command"].as_str().unwrap());
        findings.same(&format!("docker ps image of {name}"), "deb:1", ps[name]["Image"].as_str().unwrap());
        // What `strata ps` showed of them.
        findings.same(
            &format!("strata ps command of {name}"),
            &Value::from(api_command(&ps[name])),
            &strata_ps[name]["Command"],
        );
        findings.same(&format!("strata ps state of {name}"), &ps[name]["State"], &strata_ps[name]["State"]);
    }

    // `inspect`: what strata recorded, GraphDriver included, and the state.
    let theirs = json(&d.docker(&["inspect", "s1", "s2"]));
    for (t, o) in theirs.as_array().unwrap().iter().zip(ours.as_array().unwrap()) {
        let name = o["Name"].as_str().unwrap();
        for key in RECORDED {
            findings.same(&format!("docker inspect {name} {key}"), &o[key], &t[key]);
        }
        for key in ["Status", "Running", "ExitCode", "StartedAt", "FinishedAt"] {
            findings.same(&format!("docker inspect {name} State.{key}"), &o["State"][key], &t["State"][key]);
        }
        findings.same_json(&format!("docker inspect {name} Config"), &o["Config"], &t["Config"]);
        findings.same(
            &format!("docker inspect {name} HostConfig.NetworkMode"),
            &Value::from("none"),
            &t["HostConfig"]["NetworkMode"],
        );
    }
    assert_eq!(theirs[1]["Image"], image.as_str());

    // `diff` (nothing yet for s1), `start -a`, `commit` and a run of what it made; a run of
    // what strata committed.
    findings.same_lines("docker diff s2", &sorted_lines(&d.docker(&["diff", "s2"])), &diff);
    findings.same("docker diff s1", root_diff_s1.as_str(), &d.docker(&["diff", "s1"]));
    let started_s1 = d.try_docker(&["start", "-a", "s1"]);
    findings.same(
        "docker start -a s1",
        ("from strata\n".to_owned(), String::new(), true),
        (
            String::from_utf8_lossy(&started_s1.stdout).into_owned(),
            String::from_utf8_lossy(&started_s1.stderr).into_owned(),
            started_s1.status.success(),
        ),
    );
    let committed = d.docker(&["commit", "-m", "by dockerd", "s2", "from-strata:1"]);
    assert!(committed.starts_with("sha256:"), "{committed}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "from-strata:1", "cat", "/x"]), "hi");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "by-strata:1", "cat", "/x"]), "hi");
    let comment = d.docker(&["history", "--format", "{{.Comment}}", "by-strata:1"]);
    assert_eq!(comment.lines().next(), Some("by strata"));
    let after_start = json(&d.docker(&["inspect", "s1"]));
    findings.same(
        "docker inspect s1 after start, State.Status",
        "exited",
        after_start[0]["State"]["Status"].as_str().unwrap(),
    );

    // `rm` takes both, their layers and records with them.
    assert_eq!(d.docker(&["rm", "s1", "s2", "s3"]), "s1\ns2\ns3");
    for p in &paths {
        findings.same(&format!("{} after docker rm", p.display()), false, p.exists());
    }
    assert_eq!(d.docker(&["ps", "-a", "-q"]), "");

    // What dockerd said about strata's containers, beyond info.
    let log = d.log();
    drop(d);
    let said: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("level=info") && !l.contains("level=debug"))
        .filter(|l| l.contains(&s1) || l.contains(&s2) || l.contains("level=error"))
        .collect();
    if !said.is_empty() {
        eprintln!("dockerd's log about strata's containers:\n{}", said.join("\n"));
    }
    findings.same(
        "dockerd errors",
        Vec::<&str>::new(),
        said.iter().copied().filter(|l| l.contains("level=error")).collect(),
    );

    // strata's own directories of the two (bundle, monitor lock) are not dockerd's to remove:
    // `check` calls what is left a leftover, and `--repair` removes it.
    let private: Vec<PathBuf> = [&s1, &s2, &s3]
        .iter()
        .map(|id| root.path().join("strata/containers").join(id))
        .filter(|p| p.exists())
        .collect();
    if !private.is_empty() {
        let report = root.strata(&["check"]);
        let report = String::from_utf8_lossy(&report.stdout).into_owned();
        let leftovers = report.lines().filter(|l| l.contains("container-leftover")).count();
        findings.same("container leftovers check finds", private.len(), leftovers);
        root.ok(&["check", "--repair"]);
        findings.same("left after check --repair", 0, private.iter().filter(|p| p.exists()).count());
    }

    // strata sees the result: no containers, the committed image, runnable; the store sound.
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(root.ok(&["run", "--rm", "from-strata:1", "cat", "/x"]), "hi");
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert_clean(&root);
    findings.assert_none();
    eprintln!("dockerd_uses_containers_strata_made: {:?}", started.elapsed());
}

#[test]
fn strata_uses_containers_dockerd_made() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let root = Root::new();
    let Some(d) = Dockerd::start(root.path()) else { return };
    d.docker(&["import", "-c", r#"CMD ["/bin/bash"]"#, path_str(&debian_rootfs()), "deb:1"]);
    assert_eq!(d.docker(&["run", "--network", "none", "--name", "d1", "deb:1", "sh", "-c", "echo hi > /y"]), "");
    let d2 = d.docker(&["create", "--name", "d2", "deb:1", "true"]);
    let said =
        d.docker(&["run", "--network", "none", "--name", "d3", "deb:1", "sh", "-c", "echo from docker; echo err >&2"]);
    assert_eq!(said, "from docker");
    let docker_ps = docker_ps(&d);
    let theirs = json(&d.docker(&["inspect", "d1", "d2"]));
    let diff = sorted_lines(&d.docker(&["diff", "d1"]));
    drop(d);
    assert!(diff.contains(&"A /y".to_owned()), "{diff:?}");
    let d1 = theirs[0]["Id"].as_str().unwrap().to_owned();
    assert_eq!(theirs[1]["Id"], d2.as_str());
    let paths: Vec<PathBuf> = [&theirs[0], &theirs[1]].iter().flat_map(|i| container_paths(&root, i)).collect();
    for p in &paths {
        assert!(p.exists(), "{}", p.display());
    }

    let mut findings = Findings::default();
    // `ps -a`: both, by ID and name, d1 exited with 0, d2 created, with image and command.
    let ps = strata_ps(&root);
    assert_eq!(ps.keys().collect::<Vec<_>>(), ["d1", "d2", "d3"], "{ps:#?}");
    // `logs` reads dockerd's json-file log.
    let logs = root.strata(&["logs", "d3"]);
    findings.same(
        "strata logs d3",
        ("from docker\n".to_owned(), "err\n".to_owned()),
        (String::from_utf8_lossy(&logs.stdout).into_owned(), String::from_utf8_lossy(&logs.stderr).into_owned()),
    );
    assert_eq!(ps["d1"]["Id"], d1.as_str());
    assert_eq!(ps["d2"]["Id"], d2.as_str());
    findings.same("strata ps status of d2", "Created", ps["d2"]["Status"].as_str().unwrap());
    findings.same("strata ps state of d2", "created", ps["d2"]["State"].as_str().unwrap());
    let status = ps["d1"]["Status"].as_str().unwrap();
    findings.same("strata ps status of d1", true, status.starts_with("Exited (0) "));
    findings.same("strata ps state of d1", "exited", ps["d1"]["State"].as_str().unwrap());
    for (name, t) in [("d1", &theirs[0]), ("d2", &theirs[1])] {
        findings.same(&format!("strata ps image of {name}"), "deb:1", ps[name]["Image"].as_str().unwrap());
        findings.same(&format!("strata ps image ID of {name}"), &t["Image"], &ps[name]["ImageID"]);
        findings.same(&format!("strata ps state of {name}"), &docker_ps[name]["State"], &ps[name]["State"]);
    }
    for name in ["d1", "d2"] {
        let command = api_command(&docker_ps[name]);
        findings.same(&format!("strata ps command of {name}"), command.as_str(), ps[name]["Command"].as_str().unwrap());
    }

    // `inspect`: dockerd's records as dockerd shows them, GraphDriver included.
    let ours = json(&root.ok(&["inspect", "d1", "d2"]));
    for (t, o) in theirs.as_array().unwrap().iter().zip(ours.as_array().unwrap()) {
        let name = t["Name"].as_str().unwrap();
        for key in RECORDED {
            findings.same(&format!("strata inspect {name} {key}"), &t[key], &o[key]);
        }
        for key in ["Status", "Running", "ExitCode", "StartedAt", "FinishedAt"] {
            findings.same(&format!("strata inspect {name} State.{key}"), &t["State"][key], &o["State"][key]);
        }
        findings.same_json(&format!("strata inspect {name} Config"), &t["Config"], &o["Config"]);
    }

    // `diff`.
    findings.same_lines("strata diff d1", &diff, &sorted_lines(&root.ok(&["diff", "d1"])));

    // `start` runs d2 (`true`), which then shows as exited with 0.
    let out = root.strata(&["start", "-a", "d2"]);
    findings.same(
        "strata start d2",
        (true, String::new()),
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()),
    );
    let ps = strata_ps(&root);
    findings.same("strata ps state of d2 after start", "exited", ps["d2"]["State"].as_str().unwrap());
    let status = ps["d2"]["Status"].as_str().unwrap();
    findings.same("strata ps status of d2 after start", true, status.starts_with("Exited (0) "));

    // `commit` of d1, and a run of the image.
    let committed = root.ok(&["commit", "d1", "y:1"]);
    assert!(committed.starts_with("sha256:"), "{committed}");
    assert_eq!(root.ok(&["run", "--rm", "y:1", "cat", "/y"]), "hi");

    // `rm` takes both, their layers and records with them.
    assert_eq!(root.ok(&["rm", "d1", "d2", "d3"]), "d1\nd2\nd3");
    for p in &paths {
        findings.same(&format!("{} after strata rm", p.display()), false, p.exists());
    }
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    assert_clean(&root);
    findings.assert_none();
    eprintln!("strata_uses_containers_dockerd_made: {:?}", started.elapsed());
}
