//! `residue serve` and `residue client` over HTTP on 127.0.0.1, at small
//! insecure parameter sets: round trips checked against the plaintext
//! model, two clients at once, token isolation, malformed / oversized /
//! truncated bodies, a server killed with SIGKILL with jobs in flight and
//! restarted on the same store, and servers sharing one store.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serve::client::Client;

mod common;
use common::ok;

/// A running `residue serve`, killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(fx: &Fixture, store: &Path, extra: &[&str]) -> Self {
        Self::start_at(fx, store, "127.0.0.1:0", extra)
    }

    fn start_at(fx: &Fixture, store: &Path, addr: &str, extra: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(fx.dir.join("servers.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args([
                "serve",
                "--plan",
                &fx.p("plan.json"),
                "--model",
                &fx.p("m.onnx"),
                "--store",
                &store.display().to_string(),
                "--addr",
                addr,
                "--poll-secs",
                "0.2",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "no address: {line:?}; log: {}",
                    std::fs::read_to_string(fx.dir.join("servers.log")).unwrap_or_default()
                )
            })
            .to_string();
        Self { child, url }
    }

    fn client(&self) -> Client {
        Client::new(&self.url)
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A model, its plan at `params`, inputs and their plaintext answers.
/// Follows a job (every 100 ms, at most 300 s) and asserts it finished.
fn wait_done(c: &Client, job: &str, token: &str) -> serve::jobs::JobStatus {
    let st = c
        .wait(
            job,
            token,
            Duration::from_millis(100),
            Duration::from_secs(300),
            |_| {},
        )
        .unwrap();
    assert_eq!(st.state, serve::jobs::JobState::Done, "{st:?}");
    st
}

struct Fixture {
    dir: PathBuf,
    /// Per input `xI.npy`: plaintext class and logits.
    want: Vec<(u64, Vec<f64>)>,
}

impl Fixture {
    fn p(&self, s: &str) -> String {
        self.dir.join(s).display().to_string()
    }

    fn new(name: &str, params: &str, deep: bool, inputs: usize) -> Self {
        Self::with_model(
            name,
            params,
            if deep { deep_model() } else { small_model() },
            inputs,
        )
    }

    fn with_model(name: &str, params: &str, g: nn::Graph, inputs: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("residue-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        nn::onnx::save(&g, dir.join("m.onnx")).unwrap();
        let mut fx = Self { dir, want: vec![] };
        // Activations as two-level polynomials and the input at L_eff: the
        // deep model then bootstraps on the small sets (with completed
        // squares, or with the fresh levels above L_eff, it fits).
        ok(&[
            "compile",
            &fx.p("m.onnx"),
            "--params",
            params,
            "--no-fused-squares",
            "--no-fresh-levels",
            "--out",
            &fx.p("plan.json"),
        ]);
        for i in 0..inputs {
            let x: Vec<f32> = (0..64)
                .map(|k| ((k as f32 + 13.0 * i as f32) * 0.37).sin().abs())
                .collect();
            let f = format!("x{i}.npy");
            std::fs::write(fx.dir.join(&f), nn::input::encode_npy_f32(&[1, 8, 8], &x)).unwrap();
            let v: serde_json::Value = serde_json::from_str(&ok(&[
                "predict",
                "--model",
                &fx.p("m.onnx"),
                "--input",
                &fx.p(&f),
                "--json",
            ]))
            .unwrap();
            fx.want
                .push((v["class"].as_u64().unwrap(), floats(&v["logits"])));
        }
        fx
    }

    /// Checks decrypted logits against input `i`'s plaintext answer.
    fn check(&self, i: usize, class: u64, logits: &[f64]) {
        let (c, want) = &self.want[i];
        let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        for (a, b) in logits.iter().zip(want) {
            assert!((a - b).abs() <= 1e-2 * scale, "{logits:?} vs {want:?}");
        }
        assert_eq!(class, *c, "{logits:?} vs {want:?}");
    }

    /// `residue client` for input `i` with key directory `keys`.
    fn client_cmd(&self, url: &str, keys: &str, i: usize) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_residue"));
        c.args([
            "client",
            "--server",
            url,
            "--plan-out",
            &self.p(&format!("{keys}.plan.json")),
            "--keys",
            &self.p(keys),
            "--input",
            &self.p(&format!("x{i}.npy")),
            "--json",
        ]);
        c
    }

    /// Runs `residue client` and checks its answer; returns its JSON.
    fn client(&self, url: &str, keys: &str, i: usize) -> serde_json::Value {
        let o = self.client_cmd(url, keys, i).output().unwrap();
        self.check_client_output(&o, i)
    }

    fn check_client_output(&self, o: &Output, i: usize) -> serde_json::Value {
        assert!(
            o.status.success(),
            "client failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        self.check(i, v["class"].as_u64().unwrap(), &floats(&v["logits"]));
        v
    }

    /// Keys generated with `residue keygen`, the encrypted input `i`, and
    /// the registration of the keys on `c`: (key id, token, input bytes).
    fn keys_and_input(&self, c: &Client, keys: &str, i: usize) -> (String, String, Vec<u8>) {
        if !self.dir.join(keys).join("secret.key").exists() {
            ok(&[
                "keygen",
                "--plan",
                &self.p("plan.json"),
                "--model",
                &self.p("m.onnx"),
                "--out",
                &self.p(keys),
            ]);
        }
        let ct = format!("{keys}-x{i}.ct");
        ok(&[
            "encrypt",
            "--keys",
            &self.p(keys),
            "--plan",
            &self.p("plan.json"),
            "--input",
            &self.p(&format!("x{i}.npy")),
            "--out",
            &self.p(&ct),
        ]);
        let k = c.upload_keys(&self.dir.join(keys)).unwrap();
        (k.key_id, k.token, std::fs::read(self.dir.join(ct)).unwrap())
    }

    /// Decrypts a downloaded result with `keys` and checks it against input `i`.
    fn check_result(&self, keys: &str, i: usize, result: &[u8]) {
        let f = self.dir.join(format!("{keys}-y{i}.ct"));
        std::fs::write(&f, result).unwrap();
        let v: serde_json::Value = serde_json::from_str(&ok(&[
            "decrypt",
            "--keys",
            &self.p(keys),
            "--input",
            &f.display().to_string(),
            "--json",
        ]))
        .unwrap();
        self.check(i, v["class"].as_u64().unwrap(), &floats(&v["logits"]));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn tensor(shape: Vec<usize>, seed: usize) -> nn::Tensor {
    let n: usize = shape.iter().product();
    nn::Tensor::new(
        shape,
        (0..n)
            .map(|i| ((i + 31 * seed) as f64 * 0.618).fract() - 0.5)
            .collect(),
    )
    .unwrap()
}

/// conv -> x^2-ish activation -> pool -> dense on 1x8x8 (no bootstrap at
/// `insecure-n12`).
fn small_model() -> nn::Graph {
    layers(1)
}

/// The small model with another classifier bias (another plan).
fn other_small_model() -> nn::Graph {
    let mut g = layers(1);
    for n in &mut g.nodes {
        if let nn::Op::Dense(d) = &mut n.op
            && let Some(b) = &mut d.bias
        {
            b.data[3] += 2.0;
        }
    }
    g
}

/// Three conv + activation blocks: more levels than `insecure-boot-n12-l9`
/// has, so the plan bootstraps.
fn deep_model() -> nn::Graph {
    layers(3)
}

fn layers(blocks: usize) -> nn::Graph {
    use nn::graph::{Conv2d, Dense, Pads, PolyAct};
    use nn::{Graph, Node, Op};
    let mut g = Graph::new("small", "x", vec![1, 8, 8]);
    let mut cur = "x".to_string();
    let mut cin = 1;
    for b in 0..blocks {
        g.push(Node::new(
            format!("conv{b}"),
            Op::Conv2d(Conv2d {
                weight: tensor(vec![4, cin, 3, 3], 1 + b),
                bias: Some(tensor(vec![4], 2 + b)),
                stride: [1, 1],
                pads: Pads::uniform(1),
            }),
            vec![cur.clone()],
            format!("c{b}"),
        ));
        g.push(Node::new(
            format!("act{b}"),
            Op::PolyAct(PolyAct {
                coeffs: vec![0.1, 1.0, 0.5],
                range: [-3.0, 3.0],
            }),
            vec![format!("c{b}")],
            format!("a{b}"),
        ));
        cur = format!("a{b}");
        cin = 4;
    }
    g.push(Node::new("pool", Op::GlobalAvgPool, vec![cur], "p"));
    g.push(Node::new("flat", Op::Flatten, vec!["p".into()], "f"));
    g.push(Node::new(
        "fc",
        Op::Dense(Dense {
            weight: tensor(vec![10, 4], 3),
            bias: Some(tensor(vec![10], 4)),
        }),
        vec!["f".into()],
        "y",
    ));
    g.output = "y".into();
    g
}

/// Sends a raw HTTP request (headers and a body that may be shorter than
/// its Content-Length) and returns the status line, or "" if the server
/// closed without answering.
fn raw(addr: &str, head: &str, body: &[u8], close_early: bool) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    if close_early {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or("").to_string()
}

/// Sends a whole raw HTTP request (`Connection: close` added) and returns
/// the status line, the headers (lowercase names) and the body.
fn raw_full(addr: &str, method_path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method_path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").to_string();
    let headers = lines
        .map(|l| l.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    (status, headers, body.to_string())
}

/// Checks that an answer is `status` with a one-line JSON error body.
fn json_error(addr: &str, method_path: &str, status: u16) -> (String, String) {
    let (line, headers, body) = raw_full(addr, method_path);
    assert!(
        line.contains(&format!(" {status} ")),
        "{method_path}: {line} {body}"
    );
    assert!(
        headers.contains("content-type: application/json"),
        "{method_path}: {headers}"
    );
    assert!(!body.trim_end().contains('\n'), "{method_path}: {body:?}");
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{method_path}: not JSON ({e}): {body:?}"));
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{method_path}: no error field: {body}"));
    assert!(!msg.is_empty(), "{method_path}: {body}");
    (msg.to_string(), headers)
}

/// The entries of `store/keys` (key ids, and anything else left there).
fn key_entries(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("keys"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn status(r: Result<impl std::fmt::Debug, serve::client::ClientError>) -> u16 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .status()
            .unwrap_or_else(|| panic!("not an HTTP error: {e}")),
    }
}

fn reg(fx: &Fixture, keys: &str) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.dir.join(keys).join("server.json")).unwrap())
            .unwrap();
    (
        v["key_id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

#[test]
fn two_clients_round_trip_reuse_keys_and_cannot_use_each_others() {
    let fx = Fixture::new("clients", "insecure-n12", false, 2);
    let s = Server::start(&fx, &fx.dir.join("store"), &["--workers", "2"]);
    // Two clients at once, each with its own keys and input.
    let a = fx
        .client_cmd(&s.url, "ka", 0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = fx
        .client_cmd(&s.url, "kb", 1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let va = fx.check_client_output(&a.wait_with_output().unwrap(), 0);
    let vb = fx.check_client_output(&b.wait_with_output().unwrap(), 1);
    assert_eq!(va["key_reused"], false);
    assert_ne!(va["key_id"], vb["key_id"]);
    // Again: the key id is reused, nothing uploaded.
    let va2 = fx.client(&s.url, "ka", 1);
    assert_eq!(va2["key_reused"], true);
    assert_eq!(va2["key_id"], va["key_id"]);

    // Token isolation.
    let c = s.client();
    let (ka, ta) = reg(&fx, "ka");
    let (kb, tb) = reg(&fx, "kb");
    let ja = va["job_id"].as_str().unwrap();
    assert!(c.key(&ka, &ta).is_ok());
    assert_eq!(status(c.key(&ka, &tb)), 404);
    assert_eq!(status(c.key(&kb, &ta)), 404);
    assert_eq!(status(c.submit(&ka, &tb, b"whatever")), 404);
    assert_eq!(status(c.job(ja, &tb)), 404);
    assert_eq!(status(c.result(ja, &tb)), 404);
    assert_eq!(status(c.result(ja, "not-a-token")), 404);
    assert!(c.result(ja, &ta).is_ok());
    let line = raw(
        &s.addr(),
        &format!("GET /v1/jobs/{ja} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        b"",
        false,
    );
    assert!(line.contains(" 401 "), "{line}");

    let m = c.metrics().unwrap();
    assert!(m.contains("residue_jobs_done_total 3"), "{m}");
    assert!(m.contains("residue_key_uploads_total 2"), "{m}");
    assert!(m.contains("residue_inference_seconds_count 3"), "{m}");

    // Owners delete; others cannot.
    assert_eq!(status(c.delete_job(ja, &tb)), 404);
    assert_eq!(status(c.delete_key(&ka, &tb)), 404);
    c.delete_job(ja, &ta).unwrap();
    assert_eq!(status(c.job(ja, &ta)), 404);
    let store = fx.dir.join("store");
    assert!(
        !store.join("jobs").join(ja).exists(),
        "a deleted job's folder"
    );
    c.delete_key(&ka, &ta).unwrap();
    assert!(
        !store.join("keys").join(&ka).exists(),
        "a deleted key's folder"
    );
    assert_eq!(status(c.key(&ka, &ta)), 404);
    assert_eq!(status(c.submit(&ka, &ta, b"x")), 404);
    // The client notices and uploads again.
    let va3 = fx.client(&s.url, "ka", 0);
    assert_eq!(va3["key_reused"], false);
    assert!(c.key(&kb, &tb).is_ok());
}

#[test]
fn bad_bodies_get_4xx_and_the_server_keeps_serving() {
    let fx = Fixture::new("bad", "insecure-n12", false, 1);
    let s = Server::start(&fx, &fx.dir.join("store"), &[]);
    let c = s.client();
    let (key, token, input) = fx.keys_and_input(&c, "k", 0);
    let ek = std::fs::read(fx.dir.join("k/eval/eval.keys")).unwrap();
    let sk = std::fs::read(fx.dir.join("k/secret.key")).unwrap();
    let up = |b: Vec<u8>| c.upload_keys_from(std::io::Cursor::new(b));
    assert_eq!(status(up(b"garbage".to_vec())), 400);
    assert_eq!(status(up(Vec::new())), 400);
    assert_eq!(status(up(ek[..ek.len() / 2].to_vec())), 400);
    let mut junk = ek.clone();
    junk.extend_from_slice(&[7u8; 1000]);
    assert_eq!(status(up(junk)), 400);
    let mut flipped = ek.clone();
    flipped[5] ^= 0x40;
    assert_eq!(status(up(flipped)), 400);
    match up(sk) {
        Err(e) => assert!(
            e.to_string().contains("secret key") && e.status() == Some(400),
            "{e}"
        ),
        Ok(_) => panic!("a secret key was accepted"),
    }
    // Oversized, by Content-Length, before any byte is read.
    let line = raw(
        &s.addr(),
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999\r\nConnection: close\r\n\r\n",
        b"",
        false,
    );
    assert!(line.contains(" 413 "), "{line}");
    // Inputs: malformed, empty, a result instead of an input, oversized,
    // truncated.
    assert_eq!(status(c.submit(&key, &token, b"garbage")), 400);
    assert_eq!(status(c.submit(&key, &token, b"")), 400);
    assert_eq!(
        status(c.submit(&key, &token, &input[..input.len() / 2])),
        400
    );
    let mut wrong_kind = input.clone();
    wrong_kind[6] = 2;
    assert_eq!(status(c.submit(&key, &token, &wrong_kind)), 400);
    let big = vec![0u8; c.info().unwrap().max_input_bytes as usize + 1];
    assert_eq!(status(c.submit(&key, &token, &big)), 413);
    // A body cut short at the HTTP level: the connection closes early.
    let head = format!(
        "POST /v1/keys/{key}/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        input.len()
    );
    let line = raw(&s.addr(), &head, &input[..100], true);
    assert!(line.is_empty() || line.contains(" 400 "), "{line}");
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        ek.len()
    );
    let line = raw(&s.addr(), &head, &ek[..ek.len() / 3], true);
    assert!(line.is_empty() || line.contains(" 400 "), "{line}");
    // Not JSON-speaking paths and methods.
    assert_eq!(status(c.job("../../etc/passwd", &token)), 404);
    let line = raw(
        &s.addr(),
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
        false,
    );
    assert!(line.contains(" 404 "), "{line}");
    let line = raw(&s.addr(), "this is not http\r\n\r\n", b"", false);
    assert!(!line.contains(" 200 "), "{line}");

    // Refused uploads left nothing in the store: the one key set accepted
    // is all there is under keys/ (a body cut off by the connection
    // closing is cleaned up once the server notices).
    let store = fx.dir.join("store");
    let t0 = Instant::now();
    while key_entries(&store) != std::slice::from_ref(&key)
        && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(key_entries(&store), std::slice::from_ref(&key));

    // Still serving: a real job runs and is right.
    assert_eq!(c.health().unwrap()["status"], "ok");
    let job = c.submit(&key, &token, &input).unwrap();
    wait_done(&c, &job, &token);
    fx.check_result("k", 0, &c.result(&job, &token).unwrap());
    let m = c.metrics().unwrap();
    assert!(m.contains("residue_key_uploads_refused_total"), "{m}");
}

#[test]
fn requests_axum_refuses_get_one_line_json_errors() {
    let fx = Fixture::new("json", "insecure-n12", false, 0);
    let s = Server::start(&fx, &fx.dir.join("store"), &[]);
    let a = s.addr();
    // A query string that does not deserialize.
    let (m, _) = json_error(&a, "GET /v1/info?model=a&model=b", 400);
    assert!(m.contains("query"), "{m}");
    // A path segment that is not UTF-8.
    json_error(&a, "GET /v1/jobs/%FF%FE", 400);
    // Methods a path does not have: 405 with Allow.
    let (m, h) = json_error(&a, "PUT /v1/keys", 405);
    assert!(m.contains("PUT") && m.contains("/v1/keys"), "{m}");
    assert!(h.contains("allow: post"), "{h}");
    let (_, h) = json_error(&a, "POST /health", 405);
    assert!(h.contains("allow: get"), "{h}");
    json_error(&a, "DELETE /v1/plan", 405);
    // Unknown routes.
    json_error(&a, "GET /nope", 404);
    json_error(&a, "GET /v1/keys/x/y/z", 404);
    // What the service answers itself stays as it was.
    let (m, _) = json_error(&a, "GET /v1/jobs/0123", 401);
    assert!(m.contains("Authorization"), "{m}");
    let (line, _, body) = raw_full(&a, "GET /health");
    assert!(line.contains(" 200 "), "{line}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"],
        "ok"
    );
    let m = s.client().metrics().unwrap();
    assert!(m.contains("status=\"405\""), "{m}");
}

#[test]
fn a_client_whose_server_goes_away_names_its_job_and_how_to_fetch_it() {
    let fx = Fixture::new("gone", "insecure-n12", false, 1);
    let store = fx.dir.join("store");
    // An API-only server: it accepts the job and runs none.
    let mut front = Server::start(&fx, &store, &["--worker-id", "front", "--workers", "0"]);
    let client = fx
        .client_cmd(&front.url, "k", 0)
        .args(["--timeout-secs", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the job is in the store, the server goes away.
    let t0 = Instant::now();
    let job = loop {
        let ids: Vec<String> = std::fs::read_dir(store.join("jobs"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| store.join("jobs").join(n).join("meta.json").exists())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(j) = ids.into_iter().next() {
            break j;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no job submitted");
        std::thread::sleep(Duration::from_millis(50));
    };
    front.kill();
    let o = client.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let (key, token) = reg(&fx, "k");
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{err}");
    for want in [
        format!("job {job} (key {key})"),
        format!("/v1/jobs/{job}/result"),
        "server.json".to_string(),
        "residue decrypt".to_string(),
    ] {
        assert!(last.contains(&want), "{want:?} not in {last}");
    }
    assert!(!last.contains(&token), "the token is not printed: {last}");
    // What it says works: another server on the store runs the job, and
    // its result is fetched with the token and decrypted.
    let s = Server::start(&fx, &store, &["--worker-id", "w"]);
    let c = s.client();
    wait_done(&c, &job, &token);
    fx.check_result("k", 0, &c.result(&job, &token).unwrap());
}

#[test]
fn a_killed_server_finishes_its_jobs_after_restart() {
    let fx = Fixture::new("kill", "insecure-boot-n12-l9", true, 2);
    let store = fx.dir.join("store");
    let mut s1 = Server::start(&fx, &store, &["--worker-id", "w1", "--queue", "1"]);
    let c1 = s1.client();
    assert!(c1.info().unwrap().bootstraps > 0, "the plan must bootstrap");
    let (key, token, x0) = fx.keys_and_input(&c1, "k", 0);
    let x1 = {
        ok(&[
            "encrypt",
            "--keys",
            &fx.p("k"),
            "--plan",
            &fx.p("plan.json"),
            "--input",
            &fx.p("x1.npy"),
            "--out",
            &fx.p("x1.ct"),
        ]);
        std::fs::read(fx.dir.join("x1.ct")).unwrap()
    };
    // One job running, one queued behind it (one worker). The second is
    // submitted once the worker has taken the first: before that the first
    // fills the queue of one, and the second would be refused (a race that
    // failed this test on a busy machine).
    let j0 = c1.submit(&key, &token, &x0).unwrap();
    let t0 = Instant::now();
    let at_kill = loop {
        let st = c1.job(&j0, &token).unwrap();
        if st.state == serve::jobs::JobState::Running || st.state.is_final() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{st:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let j1 = c1.submit(&key, &token, &x1).unwrap();
    // One running, one queued, a queue of one: a third is refused with 429
    // and Retry-After (certainly so if the first is still running after).
    let third = c1.submit(&key, &token, &x1);
    let still = c1.job(&j0, &token).unwrap().state == serve::jobs::JobState::Running;
    let mut extra = None;
    match third {
        Err(serve::client::ClientError::Http {
            status,
            retry_after,
            ..
        }) => {
            assert_eq!(status, 429);
            assert!(retry_after.is_some());
        }
        Err(e) => panic!("{e}"),
        Ok(j) => {
            assert!(!still, "a full queue took a job");
            extra = Some(j);
        }
    }
    s1.kill();
    // A client waiting on the job while the server is down carries on
    // once it is back (same address).
    let waiter = {
        let (c1, j0, token) = (c1.clone(), j0.clone(), token.clone());
        std::thread::spawn(move || {
            c1.wait(
                &j0,
                &token,
                Duration::from_millis(100),
                Duration::from_secs(600),
                |_| {},
            )
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    let s2 = Server::start_at(&fx, &store, &s1.addr(), &["--worker-id", "w1"]);
    let c2 = s2.client();
    let st = waiter.join().unwrap().unwrap();
    assert_eq!(st.state, serve::jobs::JobState::Done, "{st:?}");
    assert!(c2.key(&key, &token).is_ok(), "the keys survive the restart");
    for (i, j) in [(0, &j0), (1, &j1)] {
        let st = c2
            .wait(
                j,
                &token,
                Duration::from_millis(100),
                Duration::from_secs(600),
                |_| {},
            )
            .unwrap();
        assert_eq!(st.state, serve::jobs::JobState::Done, "{st:?}");
        assert!(st.progress.bootstraps_done > 0);
        fx.check_result("k", i, &c2.result(j, &token).unwrap());
    }
    // The job that was running when the server died ran again (attempt 2),
    // and so did the one queued behind it.
    let st0 = c2.job(&j0, &token).unwrap();
    if at_kill.state == serve::jobs::JobState::Running {
        assert_eq!(st0.attempts, 2, "{st0:?}");
    }
    if still {
        assert_eq!(c2.job(&j1, &token).unwrap().attempts, 2);
    }
    if let Some(j) = extra {
        let st = c2
            .wait(
                &j,
                &token,
                Duration::from_millis(100),
                Duration::from_secs(600),
                |_| {},
            )
            .unwrap();
        assert_eq!(st.state, serve::jobs::JobState::Done, "{st:?}");
    }
    let m = c2.metrics().unwrap();
    assert!(!m.contains("residue_jobs_recovered_total 0"), "{m}");
    assert!(!m.contains("residue_bootstraps_total 0\n"), "{m}");
}

#[test]
fn a_job_whose_worker_keeps_dying_is_failed_visibly() {
    let fx = Fixture::new("attempts", "insecure-boot-n12-l9", true, 1);
    let store = fx.dir.join("store");
    let mut s1 = Server::start(&fx, &store, &["--worker-id", "w", "--max-attempts", "1"]);
    let c1 = s1.client();
    let (key, token, x0) = fx.keys_and_input(&c1, "k", 0);
    let j = c1.submit(&key, &token, &x0).unwrap();
    s1.kill();
    // Restarted with the same worker id: the job's one attempt is spent.
    let s2 = Server::start(&fx, &store, &["--worker-id", "w", "--max-attempts", "1"]);
    let st = s2
        .client()
        .wait(
            &j,
            &token,
            Duration::from_millis(50),
            Duration::from_secs(60),
            |_| {},
        )
        .unwrap();
    if st.state == serve::jobs::JobState::Failed {
        assert!(
            st.error.as_deref().unwrap_or("").contains("stopped"),
            "{st:?}"
        );
        assert_eq!(
            status(s2.client().result(&j, &token)),
            409,
            "a failed job has no result"
        );
    } else {
        // It finished before the kill landed.
        assert_eq!(st.state, serve::jobs::JobState::Done, "{st:?}");
        assert_eq!(st.attempts, 1);
    }
}

#[test]
fn servers_on_one_store_serve_each_others_keys_and_jobs() {
    let fx = Fixture::new("shared", "insecure-n12", false, 2);
    let store = fx.dir.join("store");
    let a = Server::start(&fx, &store, &["--worker-id", "a"]);
    let b = Server::start(&fx, &store, &["--worker-id", "b"]);
    // An API-only server: it accepts jobs, the others run them.
    let front = Server::start(&fx, &store, &["--worker-id", "front", "--workers", "0"]);
    let (ca, cb, cf) = (a.client(), b.client(), front.client());
    let (ka, ta, xa) = fx.keys_and_input(&ca, "ka", 0);
    let (kb, tb, xb) = fx.keys_and_input(&cb, "kb", 1);
    // Keys uploaded to A, job submitted to B (and the other way round).
    let j = cb.submit(&ka, &ta, &xa).unwrap();
    let st = wait_done(&cb, &j, &ta);
    assert_eq!(st.worker.as_deref(), Some("b"));
    fx.check_result("ka", 0, &ca.result(&j, &ta).unwrap());
    let j = ca.submit(&kb, &tb, &xb).unwrap();
    assert_eq!(wait_done(&ca, &j, &tb).worker.as_deref(), Some("a"));
    fx.check_result("kb", 1, &cb.result(&j, &tb).unwrap());
    assert!(cb.metrics().unwrap().contains("residue_key_loads_total 1"));
    // Through the API-only server.
    let j = cf.submit(&kb, &tb, &xb).unwrap();
    let st = wait_done(&cf, &j, &tb);
    assert!(matches!(st.worker.as_deref(), Some("a" | "b")), "{st:?}");
    fx.check_result("kb", 1, &cf.result(&j, &tb).unwrap());
}

#[test]
fn the_load_test_reports_throughput_latency_memory_and_no_lost_answers() {
    let fx = Fixture::new("bench", "insecure-n12", false, 0);
    let out = ok(&[
        "bench",
        "serve",
        "--plan",
        &fx.p("plan.json"),
        "--model",
        &fx.p("m.onnx"),
        "--clients",
        "2",
        "--requests",
        "2",
        "--workers",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["submitted"], 4, "{v}");
    assert_eq!(v["correct"], 4, "{v}");
    assert_eq!(v["wrong"], 0);
    assert_eq!(v["lost"], 0);
    assert!(v["throughput_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["latency_ms"]["p99"].as_f64().unwrap() >= v["latency_ms"]["p50"].as_f64().unwrap());
    assert!(v["server_peak_rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn one_server_serves_two_models_by_name() {
    let fx = Fixture::new("multi", "insecure-n12", false, 1);
    let fx2 = Fixture::with_model("multi2", "insecure-n12", other_small_model(), 1);
    std::fs::copy(fx2.dir.join("m.onnx"), fx2.dir.join("other.onnx")).unwrap();
    let s = Server::start(
        &fx,
        &fx.dir.join("store"),
        &[
            "--plan",
            &fx2.p("plan.json"),
            "--model",
            &fx2.p("other.onnx"),
        ],
    );
    let c = s.client();
    let names: Vec<String> = c.models().unwrap().into_iter().map(|m| m.model).collect();
    assert_eq!(names, ["m", "other"]);
    assert_eq!(status(c.info()), 404, "two models: a name is needed");
    let o = fx
        .client_cmd(&s.url, "ka", 0)
        .args(["--model-name", "m"])
        .output()
        .unwrap();
    assert_eq!(fx.check_client_output(&o, 0)["model"], "m");
    let o = fx2
        .client_cmd(&s.url, "kb", 0)
        .args(["--model-name", "other"])
        .output()
        .unwrap();
    assert_eq!(fx2.check_client_output(&o, 0)["model"], "other");
    let o = fx
        .client_cmd(&s.url, "kc", 0)
        .args(["--model-name", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no model named"));
}

/// Several images per request: a server of a batched plan answers three
/// images sent by one `residue client` (repeated `--input`), each as the
/// plaintext model does; more than the batch is refused in one line.
#[test]
fn a_batched_plan_serves_several_images_per_request() {
    let fx = Fixture::new("batch", "insecure-n12", false, 3);
    ok(&[
        "compile",
        &fx.p("m.onnx"),
        "--params",
        "insecure-n12",
        "--batch",
        "4",
        "--out",
        &fx.p("plan.json"),
    ]);
    let s = Server::start(&fx, &fx.dir.join("store"), &[]);
    let mut c = fx.client_cmd(&s.url, "kb", 0);
    c.args(["--input", &fx.p("x1.npy"), "--input", &fx.p("x2.npy")]);
    let o = c.output().unwrap();
    let v = fx.check_client_output(&o, 0);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (i, r) in results.iter().enumerate() {
        fx.check(i, r["class"].as_u64().unwrap(), &floats(&r["logits"]));
    }
    // Five images for a batch of four: one line, nothing sent.
    let mut c = fx.client_cmd(&s.url, "kb", 0);
    for i in [1, 2, 0, 1] {
        c.args(["--input", &fx.p(&format!("x{i}.npy"))]);
    }
    let o = c.output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("at most 4 per request"), "{err}");
}
