//! A TCP proxy that behaves like a slow, distant link: each direction carries at most RATE
//! bits per second, shared by all connections as on one wire, and delivers every byte DELAY
//! milliseconds after it was sent. The kernel's
//! netem would do it, but this machine's kernel has no `sch_netem`.
//!
//! `shaper LISTEN UPSTREAM MBIT DELAY_MS`, e.g. `shaper 127.0.0.1:6000 127.0.0.1:5000 200 20`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, mbit, delay] = args.as_slice() else {
        eprintln!("usage: shaper LISTEN UPSTREAM MBIT DELAY_MS");
        std::process::exit(2);
    };
    let bytes_per_sec = mbit.parse::<f64>().expect("MBIT") * 1e6 / 8.0;
    let delay = Duration::from_millis(delay.parse().expect("DELAY_MS"));
    let listener = TcpListener::bind(listen).expect("bind");
    // When each direction of the wire is free again.
    let up = Arc::new(Mutex::new(Instant::now()));
    let down = Arc::new(Mutex::new(Instant::now()));
    for client in listener.incoming().flatten() {
        let Ok(server) = TcpStream::connect(upstream) else { continue };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (up, down) = (Arc::clone(&up), Arc::clone(&down));
        std::thread::spawn(move || pipe(client, server, bytes_per_sec, delay, &up));
        std::thread::spawn(move || pipe(s2, c2, bytes_per_sec, delay, &down));
    }
}

/// Carry `from` → `to`: bytes leave at the link's rate and arrive `delay` later.
fn pipe(mut from: TcpStream, mut to: TcpStream, bytes_per_sec: f64, delay: Duration, wire: &Mutex<Instant>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A chunk is on the wire for len/rate, after whatever is on it already.
        let busy_until = {
            let mut free_at = wire.lock().unwrap();
            *free_at = (*free_at).max(Instant::now()) + Duration::from_secs_f64(n as f64 / bytes_per_sec);
            *free_at
        };
        // Pace reading too, so the sender feels the link (its buffers fill, as on a real one).
        let now = Instant::now();
        if busy_until > now + Duration::from_millis(5) {
            std::thread::sleep(busy_until - now - Duration::from_millis(5));
        }
        if tx.send((busy_until + delay, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}
