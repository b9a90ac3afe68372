//! `layer-cycle ROOT PARENT DOCKER_SOCK IMAGE RUNS`: the layer cycle measured in process, with
//! no process start-up on either side, so engine meets engine:
//!
//! - floor: `mkdir` + `mount(2)` of an overlay over the same lower directories + `umount` +
//!   `rm`, straight syscalls;
//! - strata: `create` + `mount` + `unmount` + `remove` of a layer on PARENT, through the library;
//! - dockerd: `POST /containers/create` + `DELETE /containers/{id}` on its API socket.
//!
//! Prints one line per case: `name mean_ms stddev_ms`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata::Store;
use strata::layer::CreateOptions;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, parent, sock, image, runs] = args.as_slice() else {
        eprintln!("usage: layer-cycle ROOT PARENT DOCKER_SOCK IMAGE RUNS");
        std::process::exit(2);
    };
    let runs: usize = runs.parse().expect("RUNS is a number");
    let layers = Store::open(root).expect("open store").layers();
    let parent = parent.parse().expect("PARENT is a layer ID");

    // The floor mounts the very lowers strata would: the parent's diff and its ancestors.
    let probe = layers.create(&CreateOptions { parent: Some(parent), ..Default::default() }).unwrap();
    let lowers = layers.graph_driver(&probe).unwrap().data.lower_dir.unwrap();
    let parent = layers.info(&probe).unwrap().parent.unwrap();
    layers.remove(&probe).unwrap();
    let floor_dir = PathBuf::from(root).join("floor");

    let floor = measure(runs, || floor_cycle(&floor_dir, &lowers));
    let ours = measure(runs, || {
        let id = layers.create(&CreateOptions { parent: Some(parent.clone()), ..Default::default() }).unwrap();
        layers.mount(&id).unwrap();
        layers.unmount(&id).unwrap();
        layers.remove(&id).unwrap();
    });
    let docker = measure(runs, || docker_cycle(Path::new(sock), image));
    for (name, (mean, sd)) in [("floor", floor), ("strata", ours), ("dockerd-api", docker)] {
        println!("{name} {mean:.3} {sd:.3}");
    }
}

/// Mean and standard deviation in milliseconds, after a short warm-up.
fn measure(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..5 {
        f();
    }
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let var = times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / times.len() as f64;
    (mean, var.sqrt())
}

fn floor_cycle(dir: &Path, lowers: &str) {
    let (upper, work, merged) = (dir.join("u"), dir.join("w"), dir.join("m"));
    for d in [dir, &upper, &work, &merged] {
        std::fs::create_dir(d).unwrap();
    }
    let data = format!("lowerdir={lowers},upperdir={},workdir={}", upper.display(), work.display());
    let data = std::ffi::CString::new(data).unwrap();
    rustix::mount::mount("overlay", &merged, "overlay", rustix::mount::MountFlags::empty(), Some(data.as_c_str()))
        .unwrap();
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

fn docker_cycle(sock: &Path, image: &str) {
    let body = format!(r#"{{"Image":"{image}","Cmd":["/bin/true"]}}"#);
    let created = http(sock, "POST", "/containers/create", &body);
    let id = created.split("\"Id\":\"").nth(1).and_then(|s| s.split('"').next()).expect("container ID");
    http(sock, "DELETE", &format!("/containers/{id}"), "");
}

/// One HTTP/1.1 request over a unix socket; returns the response body.
fn http(sock: &Path, method: &str, path: &str, body: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 20"), "{method} {path}: {response}");
    response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}
