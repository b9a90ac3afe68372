//! A real registry (Debian's `docker-registry`, distribution 2.8) on a loopback port, in the
//! modes the tests need: plain HTTP, htpasswd Basic auth over TLS with a CA made here, and
//! Bearer tokens signed by a small token server of the test's (ES256, its certificate in the
//! token's `x5c`, which the registry verifies). Also what the world provides that a test must
//! control: a pusher that writes blobs and manifests as given, and a proxy that injects faults.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

use super::images::sha256;

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd users, over TLS.
    Basic {
        users: Vec<(String, String)>,
    },
    /// Tokens from the test's token server.
    Token,
    /// TLS that asks for a client certificate signed by the test's CA.
    ClientCert,
}

/// A running registry; killed on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls: bool,
    /// The token server, in `Auth::Token` mode.
    pub tokens: Option<TokenServer>,
}

impl Registry {
    /// A registry storing under `storage` (a fresh directory if `None`).
    pub fn start(auth: Auth, storage: Option<&Path>) -> Registry {
        let registry =
            which("docker-registry").expect("docker-registry not found: apt-get install docker-registry (see .ci/run)");
        let dir = tempfile::Builder::new().prefix("strata-registry-").tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let storage = storage.map(Path::to_path_buf).unwrap_or_else(|| d.join("data"));
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: strata-test\n",
            storage.display()
        );
        let mut tls = false;
        let mut tokens = None;
        match auth {
            Auth::None => {}
            Auth::Basic { users } => {
                let mut htpasswd = String::new();
                for (user, password) in users {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", &user, &password])
                        .output()
                        .expect("htpasswd (apache2-utils)");
                    htpasswd.push_str(String::from_utf8(out.stdout).unwrap().trim());
                    htpasswd.push('\n');
                }
                std::fs::write(d.join("htpasswd"), htpasswd).unwrap();
                make_ca_and_leaf(d);
                config.push_str(&format!(
                    "  tls:\n    certificate: {0}/tls.crt\n    key: {0}/tls.key\nauth:\n  htpasswd:\n    realm: strata-test\n    path: {0}/htpasswd\n",
                    d.display()
                ));
                tls = true;
            }
            Auth::ClientCert => {
                make_ca_and_leaf(d);
                config.push_str(&format!(
                    "  tls:\n    certificate: {0}/tls.crt\n    key: {0}/tls.key\n    clientcas:\n      - {0}/ca.crt\n",
                    d.display()
                ));
                tls = true;
            }
            Auth::Token => {
                let server = TokenServer::start(d);
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: strata-test-service\n    issuer: strata-test-issuer\n    rootcertbundle: {}/token.crt\n",
                    server.port,
                    d.display()
                ));
                tokens = Some(server);
            }
        }
        std::fs::write(d.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let child = Command::new(registry)
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Registry { child, dir, port, tls, tokens };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start: {}", r.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log (its access log counts requests).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// [`certs_d`](Self::certs_d) with a client certificate the CA signed
    /// (`client.cert`, `client.key`), as docker's layout has it.
    pub fn certs_d_with_client(&self) -> PathBuf {
        let certs = self.certs_d();
        let host_dir = certs.join(self.host());
        sign(self.dir.path(), "client", "/CN=strata-client", "extendedKeyUsage=clientAuth");
        std::fs::copy(self.dir.path().join("client.crt"), host_dir.join("client.cert")).unwrap();
        std::fs::copy(self.dir.path().join("client.key"), host_dir.join("client.key")).unwrap();
        certs
    }

    /// A `certs.d` directory trusting this registry's certificate.
    pub fn certs_d(&self) -> PathBuf {
        let certs = self.dir.path().join("certs.d");
        std::fs::create_dir_all(certs.join(self.host())).unwrap();
        std::fs::copy(self.dir.path().join("ca.crt"), certs.join(self.host()).join("ca.crt")).unwrap();
        certs
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate and key: `<name>.crt`, `<name>.key` (EC P-256).
fn make_cert(dir: &Path, name: &str, subject: &str, ext: Option<&str>) {
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", subject, "-keyout"])
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")));
    if let Some(ext) = ext {
        cmd.args(["-addext", ext]);
    }
    let out = cmd.output().expect("openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`ca.crt`) and a server certificate it signed for 127.0.0.1 (`tls.crt`, `tls.key`).
fn make_ca_and_leaf(dir: &Path) {
    make_cert(dir, "ca", "/CN=strata-test-ca", None);
    sign(dir, "tls", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
}

/// A key and a certificate the CA in `dir` signs: `<name>.key`, `<name>.crt`.
fn sign(dir: &Path, name: &str, subject: &str, extension: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (key, csr, crt, ext) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
    std::fs::write(dir.join(&ext), format!("{extension}\nbasicConstraints=CA:FALSE\n")).unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[&["req", "-new"], &ec[..], &["-subj", subject, "-keyout", &key, "-out", &csr]].concat());
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &crt,
    ]);
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

// ---------------------------------------------------------------------------------------------
// Pushing by hand: blobs and manifests exactly as given.

/// Upload `bytes` as a blob of `repo` (monolithic: POST, then PUT ?digest=). Returns its digest.
pub fn push_blob(host: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256(bytes));
    let agent = agent();
    let post = agent.post(format!("http://{host}/v2/{repo}/blobs/uploads/")).send_empty().unwrap();
    assert_eq!(post.status().as_u16(), 202, "POST upload");
    let location = post.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let location = if location.starts_with("http") { location } else { format!("http://{host}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = agent
        .put(format!("{location}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .send(bytes)
        .unwrap();
    assert_eq!(put.status().as_u16(), 201, "PUT blob");
    digest
}

/// Put a manifest under `reference` (a tag or a digest). Returns its digest.
pub fn push_manifest(host: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
    let put = agent()
        .put(format!("http://{host}/v2/{repo}/manifests/{reference}"))
        .header("Content-Type", media_type)
        .send(bytes)
        .unwrap();
    let status = put.status().as_u16();
    assert_eq!(status, 201, "PUT manifest: {}", put.into_body().read_to_string().unwrap_or_default());
    format!("sha256:{}", sha256(bytes))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// How a layer is stored in the registry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compress {
    Gzip,
    Zstd,
    None,
}

/// Push an image's config and layers (each compressed as asked) and its manifest (OCI or
/// Docker schema 2) as `reference`. Returns the manifest's digest and bytes.
pub fn push_image(
    host: &str,
    repo: &str,
    reference: &str,
    image: &super::images::TestImage,
    compress: &[Compress],
    oci: bool,
) -> (String, Vec<u8>) {
    let config_digest = push_blob(host, repo, &image.config);
    let mut layers = Vec::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let how = compress.get(i).copied().unwrap_or(Compress::Gzip);
        let blob = match how {
            Compress::Gzip => super::tarball::gzip(layer),
            Compress::Zstd => zstd::encode_all(&layer[..], 3).unwrap(),
            Compress::None => layer.clone(),
        };
        let media_type = match (oci, how) {
            (true, Compress::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (true, Compress::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (true, Compress::None) => "application/vnd.oci.image.layer.v1.tar",
            (false, Compress::None) => "application/vnd.docker.image.rootfs.diff.tar",
            (false, _) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        };
        let digest = push_blob(host, repo, &blob);
        layers.push(serde_json::json!({"mediaType": media_type, "size": blob.len(), "digest": digest}));
    }
    let (media_type, config_type) = if oci {
        (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json")
    } else {
        (DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json")
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": image.config.len(), "digest": config_digest},
        "layers": layers,
    }))
    .unwrap();
    (push_manifest(host, repo, reference, media_type, &manifest), manifest)
}

// ---------------------------------------------------------------------------------------------
// The token server.

/// The refresh token the token server gives `alice` at a login.
pub const REFRESH_TOKEN: &str = "alice-refresh-token";

/// A token service as Docker Hub's: anonymous pulls, `alice`/`wonderland` may also push; a
/// login (`offline_token=true`) gets a refresh token, traded later by an OAuth2 POST.
pub struct TokenServer {
    pub port: u16,
    /// Every request's query string and whether it carried Basic credentials.
    pub requests: Arc<Mutex<Vec<(String, bool)>>>,
    /// Seconds the tokens it signs are valid for (300 unless a test shortens it; the answer
    /// always says 300, as a token service whose clock runs ahead would). The registry allows
    /// 60 s of leeway past a token's expiry.
    pub life: Arc<std::sync::atomic::AtomicI64>,
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        make_cert(dir, "token", "/CN=strata-test-token", None);
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.join("token.crt"))
            .output()
            .unwrap()
            .stdout;
        let pkcs8 = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(dir.join("token.key"))
            .output()
            .unwrap()
            .stdout;
        let rng = ring::rand::SystemRandom::new();
        let key =
            ring::signature::EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
                .expect("the token key");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let life = Arc::new(std::sync::atomic::AtomicI64::new(300));
        let lives = Arc::clone(&life);
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let Some(request) = read_request(&stream) else { continue };
                // A GET's parameters are in its query, a POST's (OAuth2) in its body.
                let query = if request.method == "POST" {
                    String::from_utf8_lossy(&request.body).into_owned()
                } else {
                    request.target.split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default()
                };
                let credentials =
                    request.headers.get("authorization").and_then(|a| a.strip_prefix("Basic ")).map(|b| {
                        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default())
                            .unwrap_or_default()
                    });
                seen.lock().unwrap().push((query.clone(), credentials.is_some()));
                let params: HashMap<String, String> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), percent_decode(v)))
                    .collect();
                let refresh = params.get("refresh_token").map(String::as_str);
                let user = match (credentials.as_deref(), refresh) {
                    (_, Some(REFRESH_TOKEN)) => "alice".into(),
                    (_, Some(_)) => {
                        respond(&stream, 401, &[], br#"{"details":"unknown refresh token"}"#);
                        continue;
                    }
                    (None, None) => String::new(),
                    (Some("alice:wonderland"), None) => "alice".into(),
                    (Some(_), None) => {
                        respond(&stream, 401, &[], br#"{"details":"wrong user name or password"}"#);
                        continue;
                    }
                };
                // Every scope asked for (a push asks for its mount sources too).
                let mut access = Vec::new();
                for scope in query.split('&').filter_map(|kv| kv.strip_prefix("scope=")).map(percent_decode) {
                    let mut parts = scope.splitn(3, ':');
                    if let (Some("repository"), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
                    {
                        let granted: Vec<&str> =
                            actions.split(',').filter(|a| *a == "pull" || !user.is_empty()).collect();
                        access.push(serde_json::json!({"type": "repository", "name": name, "actions": granted}));
                    }
                }
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": "strata-test-issuer", "sub": user, "aud": "strata-test-service",
                    "exp": now.saturating_add_signed(lives.load(std::sync::atomic::Ordering::SeqCst)), "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_u64()),
                    "access": access,
                });
                let b64 =
                    |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
                let signing_input = format!("{}.{}", b64(&header), b64(&claims));
                let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
                let token = format!(
                    "{signing_input}.{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.as_ref())
                );
                let mut body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
                if params.get("offline_token").map(String::as_str) == Some("true") && !user.is_empty() {
                    body["refresh_token"] = REFRESH_TOKEN.into();
                }
                let body = body.to_string();
                respond(&stream, 200, &[("Content-Type", "application/json")], body.as_bytes());
            }
        });
        TokenServer { port, requests, life }
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 toolkit for the token server and the proxy.

pub struct Request {
    pub method: String,
    pub target: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    /// The request as received (line and headers), for forwarding.
    pub head: Vec<String>,
    /// The body, by `Content-Length`.
    pub body: Vec<u8>,
}

/// Read a request without a body (GET, HEAD) from `stream`.
pub fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    let mut head = vec![line.trim_end().to_owned()];
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
        head.push(h);
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, target, headers, head, body })
}

pub fn respond(mut stream: &TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// The fault proxy.

/// What the proxy does to requests whose path contains `path`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Send the headers and this many bytes of the body, then close.
    Cut { path: String, after: usize, times: usize },
    /// Flip a byte of the body at this offset.
    Flip { path: String, at: usize },
    /// Answer this status instead, `times` times, with `Retry-After` if given.
    Status { path: String, status: u16, times: usize, retry_after: Option<u64> },
    /// Send the headers and this many bytes of the body, then wait without closing.
    Stall { path: String, after: usize, times: usize },
    /// Answer 307 to the same path on another host (`host:port`).
    Redirect { path: String, to: String },
    /// Close the connection without an answer, `times` times (a registry that died).
    Drop { path: String, times: usize },
}

/// A request as the proxy saw it: method, target, `Range` header, whether it carried an
/// `Authorization` header.
pub type Seen = (String, String, Option<String>, bool);

/// A proxy in front of a plain-HTTP registry, one request per connection, applying faults;
/// it counts the body bytes it sent per path and keeps the requests it saw.
pub struct Proxy {
    pub port: u16,
    pub faults: Arc<Mutex<Vec<Fault>>>,
    /// (method, target, range header) of each request.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes sent, per target.
    pub sent: Arc<Mutex<HashMap<String, usize>>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            faults: Arc::new(Mutex::new(Vec::new())),
            seen: Arc::new(Mutex::new(Vec::new())),
            sent: Arc::new(Mutex::new(HashMap::new())),
        };
        let (faults, seen, sent) = (Arc::clone(&proxy.faults), Arc::clone(&proxy.seen), Arc::clone(&proxy.sent));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (faults, seen, sent) = (Arc::clone(&faults), Arc::clone(&seen), Arc::clone(&sent));
                std::thread::spawn(move || serve(stream, upstream, &faults, &seen, &sent));
            }
        });
        proxy
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    /// Body bytes sent for targets containing `path`.
    pub fn sent_for(&self, path: &str) -> usize {
        self.sent.lock().unwrap().iter().filter(|(k, _)| k.contains(path)).map(|(_, v)| v).sum()
    }
}

fn serve(
    client: TcpStream,
    upstream: u16,
    faults: &Mutex<Vec<Fault>>,
    seen: &Mutex<Vec<Seen>>,
    sent: &Mutex<HashMap<String, usize>>,
) {
    let Some(request) = read_request(&client) else { return };
    seen.lock().unwrap().push((
        request.method.clone(),
        request.target.clone(),
        request.headers.get("range").cloned(),
        request.headers.contains_key("authorization"),
    ));
    // Faults that answer without the registry.
    let mut fault = None;
    {
        let mut list = faults.lock().unwrap();
        for f in list.iter_mut() {
            let matched = match f {
                Fault::Status { path, times, .. }
                | Fault::Cut { path, times, .. }
                | Fault::Drop { path, times }
                | Fault::Stall { path, times, .. } => request.target.contains(path.as_str()) && *times > 0,
                Fault::Flip { path, .. } | Fault::Redirect { path, .. } => request.target.contains(path.as_str()),
            };
            if matched {
                if let Fault::Status { times, .. }
                | Fault::Cut { times, .. }
                | Fault::Drop { times, .. }
                | Fault::Stall { times, .. } = f
                {
                    *times -= 1;
                }
                fault = Some(f.clone());
                break;
            }
        }
    }
    if let Some(Fault::Status { status, retry_after, .. }) = &fault {
        let retry = retry_after.map(|s| s.to_string());
        let headers: Vec<(&str, &str)> = retry.as_deref().map(|r| vec![("Retry-After", r)]).unwrap_or_default();
        respond(&client, *status, &headers, br#"{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}"#);
        return;
    }
    if let Some(Fault::Drop { .. }) = &fault {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    if let Some(Fault::Redirect { to, .. }) = &fault {
        let location = format!("http://{to}{}", request.target);
        respond(&client, 307, &[("Location", &location)], b"");
        return;
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
    let mut head: Vec<String> =
        request.head.iter().filter(|h| !h.to_ascii_lowercase().starts_with("connection:")).cloned().collect();
    head.push("Connection: close".into());
    let _ = up.write_all(format!("{}\r\n\r\n", head.join("\r\n")).as_bytes());
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else { return };
    let (headers, body) = response.split_at(split);
    let mut body = body.to_vec();
    let mut client = client;
    let mut limit = body.len();
    let mut stall = false;
    match fault {
        Some(Fault::Cut { after, .. }) => limit = after.min(body.len()),
        Some(Fault::Flip { at, .. }) if at < body.len() => body[at] ^= 0x20,
        Some(Fault::Stall { after, .. }) => {
            limit = after.min(body.len());
            stall = true;
        }
        _ => {}
    }
    let _ = client.write_all(headers);
    let _ = client.write_all(&body[..limit]);
    *sent.lock().unwrap().entry(request.target.clone()).or_default() += limit;
    if stall {
        std::thread::sleep(Duration::from_secs(600));
    }
    let _ = client.shutdown(Shutdown::Both);
}
