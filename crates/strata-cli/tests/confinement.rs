//! Confinement against the real peer: the same probes (status fields, capabilities, unshare,
//! mount, keyctl, personality, bpf, perf_event_open, ptrace, setns, masked and read-only paths,
//! `/dev`, cgroup writes, devices) run in a container of dockerd 20.10 and one of strata's on
//! the same Debian image, with the default seccomp profile, with `seccomp=unconfined`, with a
//! profile of the user's and with `no-new-privileges`; the answers are compared line by line.
//!
//! One dockerd for the whole file (it is the slow part); each side on a root of its own.

mod common;

use std::path::Path;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::debian_rootfs;

/// System calls probed through perl's `syscall` (x86_64 numbers), each printing its errno.
/// Arguments are chosen so that an allowed call fails harmlessly or only reads.
const SYSCALLS: &[(&str, &str)] = &[
    ("keyctl get user keyring", "250,0,-4,0"),
    ("add_key", "248,0,0,0,0,-4"),
    ("personality query", "135,4294967295"),
    ("personality ADDR_NO_RANDOMIZE", "135,262144"),
    ("bpf", "321,0,0,0"),
    ("perf_event_open", "298,0,0,-1,-1,0"),
    ("ptrace PEEKUSER 1", "101,3,1,0,0"),
    ("setns bad fd", "308,-1,0"),
    ("unshare CLONE_NEWUSER", "272,268435456"),
    ("unshare CLONE_NEWNS", "272,131072"),
    ("mount tmpfs", "165,0,0,0,0,0"),
    ("swapoff", "168,0"),
    ("acct", "163,0"),
    ("syslog read", "103,3,0,0"),
    ("clock_settime", "227,0,0"),
    ("mknod NULL path", "133,0,8592,259"),
];

/// The probe script: one line per answer.
fn probes(with_syscalls: bool) -> String {
    let mut script = String::from(
        r#"grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
id
unshare -Ur true 2>/dev/null; echo "unshare -Ur: $?"
unshare -m true 2>/dev/null; echo "unshare -m: $?"
mount -t tmpfs t /mnt 2>/dev/null; echo "mount: $?"
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/acpi /proc/scsi /sys/firmware; do
  echo "$f: $(cat $f 2>&1 | head -c 64 | wc -c) bytes, $(ls $f 2>/dev/null | wc -l) entries"
done
for f in /proc/sysrq-trigger /proc/sys/vm/drop_caches /proc/irq/0/smp_affinity /sys/kernel/profiling; do
  (echo 1 > $f) 2>/dev/null; echo "write $f: $?"
done
mkdir /sys/fs/cgroup/strata-probe 2>/dev/null; echo "cgroup mkdir: $?"
echo "writable cgroup hierarchies: $(for c in /sys/fs/cgroup/*/; do mkdir ${c}strata-probe 2>/dev/null && echo $c; done | wc -l)"
echo "dev: $(ls /dev | sort | tr '\n' ' ')"
echo "dev/shm: $(stat -c '%a' /dev/shm) dev/pts: $(stat -c '%a' /dev/pts)"
mknod /tmp/null2 c 1 3 2>/dev/null; echo "mknod: $?"
(echo x > /tmp/null2) 2>/dev/null; echo "write mknod'd null: $?"
mknod /tmp/sda b 8 0 2>/dev/null; (head -c 1 /tmp/sda > /dev/null) 2>/dev/null; echo "read block device: $?"
hostname probe 2>/dev/null; echo "hostname: $?"
echo "mounts ro: $(grep -E ' /(proc/sys|sys|sys/fs/cgroup) ' /proc/self/mounts | cut -d' ' -f2,4 | cut -d, -f1 | sort | tr '\n' ' ')"
"#,
    );
    if with_syscalls {
        let calls: Vec<String> = SYSCALLS.iter().map(|(name, args)| format!("'{name}:{args}'")).collect();
        script.push_str(&format!(
            "perl -e 'for (@ARGV) {{ my ($n, $s) = split /:/; my @a = map {{ $_ + 0 }} split /,/, $s; my $r = syscall(shift(@a), @a); \
             print \"$n: \", ($r < 0 ? \"errno \" . ($! + 0) : \"ok\"), \"\\n\" }}' {}\n",
            calls.join(" ")
        ));
    }
    script
}

/// The variants: docker's and strata's `--security-opt` arguments are the same.
fn variants(profile: &Path) -> Vec<(&'static str, Vec<String>, bool)> {
    vec![
        ("default", vec![], true),
        ("unconfined", vec!["--security-opt".into(), "seccomp=unconfined".into()], false),
        ("own profile", vec!["--security-opt".into(), format!("seccomp={}", profile.display())], false),
        ("no-new-privileges", vec!["--security-opt".into(), "no-new-privileges".into()], false),
    ]
}

/// A profile of the user's: allow everything but `mkdir`/`mkdirat` (EPERM).
const OWN_PROFILE: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "args": null}]}"#;

#[test]
fn probes_give_the_same_answers_as_in_dockers_containers() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIPPED: the probes use x86_64 system call numbers");
        return;
    }
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = tempfile::tempdir().unwrap();
    let profile = scratch.path().join("profile.json");
    std::fs::write(&profile, OWN_PROFILE).unwrap();
    let rootfs = debian_rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let extra = "mkdir /tmp/probe-dir 2>/dev/null; echo \"mkdir: $?\"\n";

    let docker_root = Root::new();
    let Some(d) = Dockerd::start(docker_root.path()) else { return };
    d.docker(&["import", rootfs, "deb:1"]);
    let mut theirs = Vec::new();
    for (name, opts, syscalls) in variants(&profile) {
        let script = probes(syscalls) + extra;
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(opts.iter().map(String::as_str));
        args.extend(["deb:1", "sh", "-c", &script]);
        theirs.push((name, d.docker(&args)));
    }
    drop(d);

    let root = Root::new();
    root.ok(&["import", rootfs, "deb:1"]);
    let mut differences = Vec::new();
    for ((name, opts, syscalls), (_, docker)) in variants(&profile).into_iter().zip(&theirs) {
        let script = probes(syscalls) + extra;
        let mut args = vec!["run", "--rm"];
        args.extend(opts.iter().map(String::as_str));
        args.extend(["deb:1", "sh", "-c", &script]);
        let ours = root.ok(&args);
        assert!(ours.lines().count() > 30, "{name}: too few answers:\n{ours}");
        for (d, s) in docker.lines().zip(ours.lines()) {
            if d != s {
                differences.push(format!("{name}: docker {d:?}, strata {s:?}"));
            }
        }
        assert_eq!(docker.lines().count(), ours.lines().count(), "{name}: docker:\n{docker}\nstrata:\n{ours}");
    }
    assert!(differences.is_empty(), "answers differ:\n{}", differences.join("\n"));
    // The default profile is in force: a probe that only seccomp denies.
    let (_, default) = &theirs[0];
    eprintln!("docker's default answers:\n{default}");
    assert!(default.contains("Seccomp:\t2") && default.contains("unshare -Ur: 1"), "{default}");
    assert!(default.contains("keyctl get user keyring: errno 1\nadd_key: errno 1\n"), "{default}");
    assert!(default.contains("personality query: ok\npersonality ADDR_NO_RANDOMIZE: errno 1\n"), "{default}");
    assert!(theirs[1].1.contains("Seccomp:\t0") && theirs[1].1.contains("unshare -Ur: 0"), "{}", theirs[1].1);
    assert!(theirs[2].1.contains("mkdir: 1"), "{}", theirs[2].1);
    assert!(theirs[3].1.contains("NoNewPrivs:\t1"), "{}", theirs[3].1);
}
