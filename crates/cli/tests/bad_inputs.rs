//! Every command fed empty, truncated, bit-flipped and oversized versions of
//! each file it reads exits non-zero with a one-line error: never a panic
//! (exit 101), a signal, a hang or a memory blow-up.
//!
//! One set of valid files is made once at insecure parameter sets (a small
//! model, its plan, keys, an encrypted input and result, images, arrays, a
//! data directory, JSON side files); each test then mutates one kind of
//! input and runs every command that reads it. A run is killed after
//! [`TIMEOUT`] and runs under an address-space limit of [`MEM_LIMIT`] bytes
//! (`ulimit -v`), so that a huge allocation fails as an abort (a signal)
//! instead of taking the machine's memory.
//!
//! Each case says whether it must be refused ([`Want::Refused`]) or may
//! succeed ([`Want::MayPass`]): a flip in a weight, a coefficient or a pixel
//! leaves a well-formed file that the reader cannot tell from a valid one.
//! Whatever the outcome, a run must end by itself, by an exit code, without
//! a panic; a failing run prints exactly one `error: ` line (lines starting
//! `warning: ` are diagnostics printed before it and are allowed).
//!
//! Commands and the inputs they are fed (13 commands, 18 kinds of input):
//! - the ONNX model: `analyze`, `compile`, `keygen`, `infer`, `predict`,
//!   `demo`, `serve`; the plan: `keygen`, `encrypt`, `infer`, `serve`,
//!   `bench serve`;
//! - the client's `secret.key` and `public.key`: `encrypt`, `decrypt`,
//!   `client`; `eval/eval.keys`: `infer`, `client` (uploaded: refused by
//!   the client's header check or by the server); `eval/bootstrap.keys`:
//!   `infer` for a plan at a bootstrapping set (a fixture made on first
//!   use, [`boot_fixture`]), also missing and with evaluation keys in its
//!   place;
//! - the encrypted input (`infer`) and result (`decrypt`);
//! - PNG images and `.npy` arrays: `predict`, `encrypt`, `demo`, `client`;
//! - `eval`'s data directories (IDX raw and gzipped, CIFAR-10), its
//!   `--he --log` file; `--calibrate` bench records (`analyze`,
//!   `compile`); a model's training record (`predict`, `eval`);
//! - `residue client` against one real `residue serve` on a loopback port
//!   ([`Server`], killed when dropped): its input and each file of its key
//!   directory, `server.json` included; the server must outlive them all.
//!
//! `cargo test -p residue-cli --test bad_inputs -- --nocapture` prints one
//! line per run: command, input, case, outcome (about 1000 runs, some 40 s
//! on two cores).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A run longer than this is a hang.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Address-space limit of a run (bytes): a reader that trusts a length
/// field and allocates what it claims fails here.
const MEM_LIMIT: u64 = 3 << 30;
/// Trailing garbage appended to a valid file.
const GARBAGE: usize = 1 << 20;

// ---------------------------------------------------------------- running

/// How a run ended.
#[derive(Debug)]
enum End {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal (an abort on allocation failure, a stack
    /// overflow, ...).
    Signal(i32),
    /// Did not end within [`TIMEOUT`] (killed).
    Hang,
    /// `residue serve` started serving (killed; the inputs were accepted).
    Serving,
}

struct Outcome {
    end: End,
    stderr: String,
    secs: f64,
}

/// Runs `residue args` under the memory limit and the timeout. With
/// `serving`, a run that prints `listening on` is killed and counts as
/// [`End::Serving`].
fn run(args: &[String], serving: bool) -> Outcome {
    // `exec` keeps the pid: the child's status is residue's.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v {} && exec \"$0\" \"$@\"",
            MEM_LIMIT >> 10
        ))
        .arg(env!("CARGO_BIN_EXE_residue"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .env("RAYON_NUM_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawns sh");
    let collect = |mut r: Box<dyn Read + Send>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let h = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, h)
    };
    let (out, ho) = collect(Box::new(child.stdout.take().unwrap()));
    let (err, he) = collect(Box::new(child.stderr.take().unwrap()));
    let end = loop {
        if let Some(st) = child.try_wait().expect("waits") {
            use std::os::unix::process::ExitStatusExt;
            break match (st.code(), st.signal()) {
                (Some(c), _) => End::Code(c),
                (None, Some(s)) => End::Signal(s),
                _ => End::Signal(-1),
            };
        }
        if serving && String::from_utf8_lossy(&out.lock().unwrap()).contains("listening on") {
            child.kill().ok();
            child.wait().ok();
            break End::Serving;
        }
        if t.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            break End::Hang;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ho.join().ok();
    he.join().ok();
    let stderr = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    Outcome {
        end,
        stderr,
        secs: t.elapsed().as_secs_f64(),
    }
}

/// Runs `residue args` and asserts that it succeeds (the valid baseline).
fn ok(args: &[String]) {
    let o = run(args, false);
    assert!(
        matches!(o.end, End::Code(0)),
        "{args:?}: {:?}: {}",
        o.end,
        o.stderr
    );
}

/// What a case may do.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// Must exit non-zero with one error line.
    Refused,
    /// May also succeed (a well-formed file with other values).
    MayPass,
}
use Want::{MayPass, Refused};

/// Why an outcome breaks the rules, if it does.
fn judge(o: &Outcome, want: Want) -> Option<String> {
    if o.stderr.contains("panicked") {
        return Some(format!("panicked: {}", o.stderr));
    }
    match o.end {
        End::Hang => return Some(format!("still running after {TIMEOUT:?}")),
        End::Signal(s) => return Some(format!("killed by signal {s}: {}", o.stderr)),
        End::Code(101) => return Some(format!("exit 101 (panic): {}", o.stderr)),
        End::Code(0) | End::Serving if want == Refused => {
            return Some(format!("accepted: {}", o.stderr));
        }
        End::Code(0) | End::Serving => return None,
        End::Code(_) => {}
    }
    let lines: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("warning: "))
        .collect();
    match lines.as_slice() {
        [l] if l.starts_with("error: ") && l.len() > "error: ".len() => None,
        _ => Some(format!("not one `error: ` line: {:?}", o.stderr)),
    }
}

fn outcome_word(o: &Outcome) -> String {
    match o.end {
        End::Code(0) => "accepted".into(),
        End::Code(c) => format!("refused ({c})"),
        End::Signal(s) => format!("SIGNAL {s}"),
        End::Hang => "HANG".into(),
        End::Serving => "served".into(),
    }
}

// ------------------------------------------------------------------ cases

/// One mutated file.
struct Case {
    name: String,
    bytes: Vec<u8>,
    want: Want,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, want: Want) -> Case {
    Case {
        name: name.into(),
        bytes,
        want,
    }
}

/// `v` with the byte at `at` inverted.
fn flipped(v: &[u8], at: usize) -> Vec<u8> {
    let mut b = v.to_vec();
    b[at] ^= 0xff;
    b
}

/// `v` with `with` written at `at`.
fn patched(v: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut b = v.to_vec();
    b[at..at + with.len()].copy_from_slice(with);
    b
}

/// `v` followed by [`GARBAGE`] bytes.
fn with_garbage(v: &[u8]) -> Vec<u8> {
    let mut b = v.to_vec();
    b.extend(std::iter::repeat_n(0x07u8, GARBAGE));
    b
}

/// The mutations every file gets: empty; truncated in the header, in the
/// middle and by its last byte; flipped at each of `header` (must be
/// refused) and in the body at every eighth and the last byte (`body`);
/// followed by garbage (`trailing`).
fn standard(v: &[u8], header: &[usize], body: Want, trailing: Want) -> Vec<Case> {
    let n = v.len();
    let cut = header.iter().copied().max().unwrap_or(4).min(n / 2).max(1);
    let mut c = vec![
        case("empty", Vec::new(), Refused),
        case(format!("cut@{cut}"), v[..cut].to_vec(), Refused),
        case(format!("cut@{}", n / 2), v[..n / 2].to_vec(), Refused),
        case("cut-last", v[..n - 1].to_vec(), Refused),
    ];
    for &h in header {
        c.push(case(format!("flip@{h}"), flipped(v, h), Refused));
    }
    let mut at: Vec<usize> = (1..8).map(|k| k * n / 8).collect();
    at.push(n - 1);
    at.retain(|a| !header.contains(a));
    at.dedup();
    for at in at {
        c.push(case(format!("flip@{at}"), flipped(v, at), body));
    }
    c.push(case("garbage", with_garbage(v), trailing));
    c
}

/// A JSON document nested deeper than any reader's recursion limit.
fn deep_json() -> Vec<u8> {
    let mut b = vec![b'['; 100_000];
    b.extend(vec![b']'; 100_000]);
    b
}

/// Mutations of a JSON file: the standard ones (a cut of the last byte may
/// leave the same document when it is a newline), deep nesting, and
/// semantic edits (`edits`: a path of keys and indices and a new value).
fn json_cases(v: &[u8], edits: &[(&str, serde_json::Value, Want)]) -> Vec<Case> {
    let mut c = standard(v, &[0], MayPass, Refused);
    if v.last() == Some(&b'\n') {
        c[3].want = MayPass;
    }
    c.push(case("deep", deep_json(), Refused));
    let doc: serde_json::Value = serde_json::from_slice(v).unwrap();
    for (path, val, want) in edits {
        let mut d = doc.clone();
        let mut at = &mut d;
        for k in path.split('.') {
            at = match k.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[k],
            };
        }
        *at = val.clone();
        // a long value is named by its start and length
        let shown = val.to_string();
        let shown = match shown.char_indices().nth(12) {
            Some((i, _)) if shown.len() > 24 => format!("{}..({} B)", &shown[..i], shown.len()),
            _ => shown,
        };
        c.push(case(
            format!("{path}={shown}"),
            serde_json::to_vec(&d).unwrap(),
            *want,
        ));
    }
    c
}

/// A command's arguments for a case directory and the mutated file.
type Args<'a> = dyn Fn(&Path, &Path) -> Vec<String> + 'a;

/// Runs `residue args` (command `name` on case `case` of `input`), prints
/// one line, and returns why the outcome breaks the rules, if it does.
fn check(name: &str, input: &str, case: &str, want: Want, args: &[String]) -> Option<String> {
    let o = run(args, name == "serve");
    let verdict = judge(&o, want);
    let last = o.stderr.lines().last().unwrap_or("");
    println!(
        "{name:12} {input:14} {case:28} {want:?} -> {} ({:.1} s){} | {}",
        outcome_word(&o),
        o.secs,
        if verdict.is_some() { "  FAIL" } else { "" },
        last.chars().take(150).collect::<String>()
    );
    verdict.map(|v| format!("{name} on {input} `{case}`: {v}"))
}

/// Writes each case as `dir/NAME/<file>` (with `setup` adding the files it
/// sits beside) and runs each command on it; fails listing every case
/// that broke the rules.
fn exercise(
    input: &str,
    file: &str,
    cases: &[Case],
    setup: &dyn Fn(&Path),
    commands: &[(&str, &Args<'_>)],
) {
    // tests run at once: one folder per input and first command
    let root = fixture()
        .dir
        .join("cases")
        .join(format!("{input}@{}", commands[0].0));
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let d = root.join(format!("{i}"));
        std::fs::create_dir_all(&d).unwrap();
        setup(&d);
        let path = d.join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(&path, &c.bytes).unwrap();
        for (name, args) in commands {
            // `bench serve` on accepted inputs would run a load test
            // (servers and clients of its own): only refusals are run.
            if *name == "bench serve" && c.want == MayPass {
                continue;
            }
            failures.extend(check(name, input, &c.name, c.want, &args(&d, &path)));
        }
        std::fs::remove_dir_all(&d).ok();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- fixture

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn p(&self, s: &str) -> String {
        self.dir.join(s).display().to_string()
    }
    fn read(&self, s: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(s)).unwrap()
    }
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// An 8-bit grayscale PNG.
fn png_gray(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(png::ColorType::Grayscale);
    e.set_depth(png::BitDepth::Eight);
    let mut wr = e.write_header().unwrap();
    wr.write_image_data(px).unwrap();
    wr.finish().unwrap();
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// IDX files of `n` 28x28 images and their labels.
fn idx(n: u32) -> (Vec<u8>, Vec<u8>) {
    let mut img = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        img.extend(d.to_be_bytes());
    }
    img.extend((0..n as usize * 784).map(|i| (i * 37 % 251) as u8));
    let mut lbl = vec![0, 0, 8, 1];
    lbl.extend(n.to_be_bytes());
    lbl.extend((0..n).map(|i| (i % 10) as u8));
    (img, lbl)
}

const IDX_IMAGES: &str = "t10k-images-idx3-ubyte";
const IDX_LABELS: &str = "t10k-labels-idx1-ubyte";

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Leftovers of earlier runs whose process is gone.
        if let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("residue-cli-bad-")
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("residue-cli-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = Fixture { dir };
        let p = |x: &str| f.p(x);
        common::small_model(&f.dir.join("m.onnx"), 1, 8, 0.0);
        common::small_model(&f.dir.join("m28.onnx"), 1, 28, 0.0);
        common::small_model(&f.dir.join("m32.onnx"), 3, 32, 0.0);
        let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin().abs()).collect();
        std::fs::write(
            f.dir.join("x.npy"),
            nn::input::encode_npy_f32(&[1, 8, 8], &x),
        )
        .unwrap();
        let px: Vec<u8> = (0..64).map(|i| (i * 37 % 256) as u8).collect();
        std::fs::write(f.dir.join("x.png"), png_gray(8, 8, &px)).unwrap();
        std::fs::write(
            f.dir.join("m28.train.json"),
            serde_json::to_vec_pretty(&serde_json::json!({
                "config": { "dataset": "fashion-mnist" },
                "arch": { "in_channels": 1, "input_size": [28, 28] },
                "input": nn::data::NORMALIZATION,
            }))
            .unwrap(),
        )
        .unwrap();
        let bench: Vec<serde_json::Value> = [
            ("encode", 0.3),
            ("encrypt", 0.9),
            ("decrypt", 0.2),
            ("add", 0.02),
            ("mul_plain", 0.05),
            ("mul_relin", 1.5),
            ("rescale", 0.2),
            ("rotate", 1.4),
            ("rotate_hoisted", 0.7),
        ]
        .iter()
        .map(|(op, ms)| serde_json::json!({ "op": op, "threads": 1, "median_ms": ms }))
        .collect();
        std::fs::write(
            f.dir.join("bench.json"),
            serde_json::to_vec_pretty(&bench).unwrap(),
        )
        .unwrap();
        // Data directories: 20 Fashion-MNIST-shaped images, raw and
        // gzipped; 4 CIFAR-10 records.
        let (img, lbl) = idx(20);
        for (d, gz) in [("fmnist", false), ("fmnist-gz", true)] {
            std::fs::create_dir_all(f.dir.join(d)).unwrap();
            for (name, b) in [(IDX_IMAGES, &img), (IDX_LABELS, &lbl)] {
                if gz {
                    std::fs::write(f.dir.join(d).join(format!("{name}.gz")), gzip(b)).unwrap();
                } else {
                    std::fs::write(f.dir.join(d).join(name), b).unwrap();
                }
            }
        }
        std::fs::create_dir_all(f.dir.join("cifar")).unwrap();
        let cifar: Vec<u8> = (0..4 * 3073)
            .map(|i| {
                if i % 3073 == 0 {
                    (i / 3073) as u8
                } else {
                    (i % 256) as u8
                }
            })
            .collect();
        std::fs::write(f.dir.join("cifar/test_batch.bin"), cifar).unwrap();
        // A log of `eval --he` that already holds image 0.
        let line = serde_json::json!({
            "index": 0, "label": 0, "plain_class": 1, "he_class": 1,
            "max_logit_error": 1e-4, "seconds": 0.5, "bootstraps": 0, "rotations": 12,
            "params": "insecure-n12", "threads": 1,
        });
        std::fs::write(f.dir.join("eval.log"), format!("{line}\n")).unwrap();

        ok(&args(&[
            "compile",
            &p("m.onnx"),
            "--params",
            "insecure-n12",
            "--out",
            &p("plan.json"),
        ]));
        ok(&args(
            &[
                &common::keygen_args(&p("plan.json"), &p("m.onnx"), &p("keys"))[..],
                &["--json"],
            ]
            .concat(),
        ));
        ok(&args(
            &[
                &common::encrypt_args(&p("keys"), &p("plan.json"), &p("x.ct"), &[&p("x.npy")])[..],
                &["--json"],
            ]
            .concat(),
        ));
        ok(&infer(
            &f,
            &p("plan.json"),
            &p("m.onnx"),
            &p("keys/eval"),
            &p("x.ct"),
        ));
        std::fs::rename(f.dir.join("out.ct"), f.dir.join("y.ct")).unwrap();
        f
    })
}

/// `residue infer` writing `out.ct` beside the fixture.
fn infer(f: &Fixture, plan: &str, model: &str, keys: &str, input: &str) -> Vec<String> {
    let out = f.p("out.ct");
    let mut a = args(&common::infer_args(plan, model, keys, input, &out));
    a.push("--json".into());
    a
}

/// Copies fixture files into a case directory.
fn copy(d: &Path, files: &[&str]) {
    for x in files {
        let to = d.join(x);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture().dir.join(x), to).unwrap();
    }
}

/// Links (or copies) fixture file `from` to `to` in a case directory: the
/// large key files are not copied per case. Only for files the commands
/// read (a write in place would go through to the fixture's file).
fn link_to(d: &Path, from: &str, to: &str) {
    let to = d.join(to);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let from = fixture().dir.join(from);
    if std::fs::hard_link(&from, &to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

/// The parameter set of the bootstrapping fixture: the smallest that
/// bootstraps (the fixture's model needs one bootstrap there).
const BOOT_PARAMS: &str = "insecure-boot-n12";

/// A plan of the fixture's model at [`BOOT_PARAMS`], with at least one
/// bootstrap, its keys (with `eval/bootstrap.keys`) and an encrypted
/// input, in `boot/` beside the fixture; made on first use (a few
/// seconds), only by the tests that need it.
fn boot_fixture() -> &'static str {
    static B: OnceLock<()> = OnceLock::new();
    let f = fixture();
    B.get_or_init(|| {
        let p = |x: &str| f.p(&format!("boot/{x}"));
        std::fs::create_dir_all(f.dir.join("boot")).unwrap();
        // Two-level activations and the input at L_eff, so that the
        // small model bootstraps (with the 2 fresh levels above L_eff it
        // fits without).
        ok(&args(&[
            "compile",
            &f.p("m.onnx"),
            "--params",
            BOOT_PARAMS,
            "--no-fused-squares",
            "--no-fresh-levels",
            "--out",
            &p("plan.json"),
        ]));
        let plan: serde_json::Value = serde_json::from_slice(&f.read("boot/plan.json")).unwrap();
        assert!(
            plan["bootstraps"].as_u64().unwrap() >= 1,
            "the plan at {BOOT_PARAMS} bootstraps: {}",
            plan["bootstraps"]
        );
        ok(&args(
            &[
                &common::keygen_args(&p("plan.json"), &f.p("m.onnx"), &p("keys"))[..],
                &["--json"],
            ]
            .concat(),
        ));
        assert!(f.dir.join("boot/keys/eval/bootstrap.keys").is_file());
        ok(
            &args(
                &[
                    &common::encrypt_args(
                        &p("keys"),
                        &p("plan.json"),
                        &p("x.ct"),
                        &[&f.p("x.npy")],
                    )[..],
                    &["--json"],
                ]
                .concat(),
            ),
        );
    });
    "boot"
}

// ------------------------------------------------------------------ tests

/// The valid files pass every command the tests below mutate them for
/// (so a refusal there is about the mutation).
#[test]
fn valid_inputs_are_accepted() {
    let f = fixture();
    let p = |x: &str| f.p(x);
    ok(&args(&[
        "analyze",
        &p("m.onnx"),
        "--params",
        "insecure-n12",
        "--calibrate",
        &p("bench.json"),
    ]));
    ok(&args(&[
        "predict",
        "--model",
        &p("m.onnx"),
        "--input",
        &p("x.png"),
    ]));
    ok(&args(&[
        "eval",
        "--model",
        &p("m28.onnx"),
        "--data",
        "fashion-mnist",
        &p("fmnist"),
    ]));
    ok(&args(&[
        "eval",
        "--model",
        &p("m28.onnx"),
        "--data",
        "fashion-mnist",
        &p("fmnist-gz"),
    ]));
    ok(&args(&[
        "eval",
        "--model",
        &p("m32.onnx"),
        "--data",
        "cifar10",
        &p("cifar"),
    ]));
    ok(&args(&[
        "eval",
        "--model",
        &p("m28.onnx"),
        "--data",
        "fashion-mnist",
        &p("fmnist"),
        "--he",
        "--params",
        "insecure-n12",
        "--images",
        "1",
        "--log",
        &p("eval.log"),
        "--json",
    ]));
    ok(&args(&[
        "decrypt",
        "--keys",
        &p("keys"),
        "--input",
        &p("y.ct"),
        "--json",
    ]));
}

/// The model in front of every command that reads one.
#[test]
fn onnx_models() {
    let f = fixture();
    let v = f.read("m.onnx");
    // Protobuf has no header; every flip may land in a weight.
    let mut cases = standard(&v, &[], MayPass, Refused);
    cases.extend(onnx_crafted(&v));
    let p = |x: &str| f.p(x);
    let plan = p("plan.json");
    let eval = p("keys/eval");
    let ct = p("x.ct");
    let npy = p("x.npy");
    exercise(
        "model",
        "m.onnx",
        &cases,
        // the side file that `init-external-2^40` names, shorter than it says
        &|d| std::fs::write(d.join("w.bin"), [0u8; 16]).unwrap(),
        &[
            ("analyze", &|_, m| {
                args(&["analyze", &s(m), "--params", "insecure-n12"])
            }),
            ("compile", &|d, m| {
                args(&[
                    "compile",
                    &s(m),
                    "--params",
                    "insecure-n12",
                    "--out",
                    &s(d.join("p.json")),
                ])
            }),
            ("keygen", &|d, m| {
                args(&[
                    "keygen",
                    "--plan",
                    &plan,
                    "--model",
                    &s(m),
                    "--out",
                    &s(d.join("k")),
                    "--json",
                ])
            }),
            ("infer", &|d, m| {
                let mut a = infer(f, &plan, &s(m), &eval, &ct);
                a[10] = s(d.join("o.ct"));
                a
            }),
            ("predict", &|_, m| {
                args(&["predict", "--model", &s(m), "--input", &npy])
            }),
            ("demo", &|_, m| {
                args(&[
                    "demo",
                    "--model",
                    &s(m),
                    "--image",
                    &npy,
                    "--params",
                    "insecure-n12",
                    "--json",
                ])
            }),
            ("serve", &|d, m| {
                args(&[
                    "serve",
                    "--plan",
                    &plan,
                    "--model",
                    &s(m),
                    "--store",
                    &s(d.join("store")),
                    "--addr",
                    "127.0.0.1:0",
                ])
            }),
        ],
    );
}

/// Protobuf-level tricks on an ONNX file: the graph given an initializer
/// that claims huge dimensions with 4 bytes of data, or with none, or
/// external data of a huge length or outside the model's folder; and the
/// graph's length field claiming 2^40 bytes.
fn onnx_crafted(v: &[u8]) -> Vec<Case> {
    fn varint(mut x: u64, out: &mut Vec<u8>) {
        while x >= 0x80 {
            out.push((x as u8) | 0x80);
            x >>= 7;
        }
        out.push(x as u8);
    }
    fn read_varint(b: &[u8], at: &mut usize) -> u64 {
        let mut x = 0u64;
        for k in 0.. {
            let byte = b[*at];
            *at += 1;
            x |= u64::from(byte & 0x7f) << (7 * k);
            if byte < 0x80 {
                break;
            }
        }
        x
    }
    fn field(num: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }
    fn int(num: u64, x: u64, out: &mut Vec<u8>) {
        varint(num << 3, out);
        varint(x, out);
    }
    // The model's top-level fields: (start, number, body range).
    let mut fields = Vec::new();
    let mut at = 0;
    while at < v.len() {
        let start = at;
        let key = read_varint(v, &mut at);
        let body = match key & 7 {
            0 => {
                read_varint(v, &mut at);
                at..at
            }
            1 => (at..at + 8, at += 8).0,
            2 => {
                let len = read_varint(v, &mut at) as usize;
                (at..at + len, at += len).0
            }
            5 => (at..at + 4, at += 4).0,
            w => panic!("wire type {w} in a valid model"),
        };
        fields.push((start, key >> 3, body));
    }
    let (g_start, _, g_body) = fields.iter().find(|f| f.1 == 7).expect("a graph").clone();
    // The model with `extra` appended to its graph.
    let with_graph = |extra: &[u8]| {
        let mut g = v[g_body.clone()].to_vec();
        g.extend_from_slice(extra);
        let mut m = v[..g_start].to_vec();
        field(7, &g, &mut m);
        m.extend_from_slice(&v[g_body.end..]);
        m
    };
    let tensor = |name: &str, dims: &[u64], raw: Option<&[u8]>, external: Option<(&str, u64)>| {
        let mut t = Vec::new();
        for &d in dims {
            int(1, d, &mut t);
        }
        int(2, 1, &mut t); // FLOAT
        field(8, name.as_bytes(), &mut t);
        if let Some(r) = raw {
            field(9, r, &mut t);
        }
        if let Some((loc, len)) = external {
            for (k, val) in [("location", loc.to_string()), ("length", len.to_string())] {
                let mut e = Vec::new();
                field(1, k.as_bytes(), &mut e);
                field(2, val.as_bytes(), &mut e);
                field(13, &e, &mut t);
            }
            int(14, 1, &mut t); // EXTERNAL
        }
        let mut g = Vec::new();
        field(5, &t, &mut g);
        with_graph(&g)
    };
    let mut claim = v[..g_start].to_vec();
    varint(7 << 3 | 2, &mut claim);
    varint(1 << 40, &mut claim);
    claim.extend_from_slice(&v[g_body.clone()]);
    claim.extend_from_slice(&v[g_body.end..]);
    assert_eq!(with_graph(&[]), v, "the walk rebuilds the model");
    vec![
        // Unused initializers are ignored by ONNX importers: one with a
        // consistent size may be accepted, malformed ones must not be.
        case(
            "init-dims-2^93",
            tensor("huge", &[1 << 31, 1 << 31, 1 << 31], Some(&[0; 4]), None),
            Refused,
        ),
        case(
            "init-dims-2^32-nodata",
            tensor("huge", &[1 << 16, 1 << 16], None, None),
            Refused,
        ),
        case(
            "init-external-2^40",
            tensor("huge", &[1 << 20, 1 << 18], None, Some(("w.bin", 1 << 40))),
            Refused,
        ),
        case(
            "init-external-escape",
            tensor("huge", &[4], None, Some(("../../../../etc/passwd", 16))),
            Refused,
        ),
        case("graph-claims-2^40", claim, Refused),
    ]
}

/// The plan in front of every command that reads one.
#[test]
fn plans() {
    use serde_json::json;
    let f = fixture();
    let v = f.read("plan.json");
    // Every plan field is checked against the parameter set and the model;
    // a flip in a number may still leave a consistent plan (a value scale,
    // a cost estimate), so flips may pass.
    let big = json!(1u64 << 40);
    let cases = json_cases(
        &v,
        &[
            ("version", json!(99), Refused),
            ("params.name", json!("insecure-n10"), Refused),
            ("params.batch", big.clone(), Refused),
            ("params.slots", big.clone(), Refused),
            ("params.log_n", json!(255), Refused),
            ("params.input_level", big.clone(), Refused),
            ("nodes", json!([]), Refused),
            ("nodes.0.layout_out.channels", big.clone(), Refused),
            ("nodes.0.layout_out.slots", big.clone(), Refused),
            ("nodes.1.layout_in.height", big.clone(), Refused),
            // a step's own rotation list is the compiler's report: keys
            // and execution take the plan's `galois_steps` and the model
            ("nodes.1.rotation_steps", json!([1i64 << 40]), MayPass),
            ("nodes.1.bsgs_baby", big.clone(), Refused),
            ("galois_steps", json!([1i64 << 40]), Refused),
            ("bootstraps", big.clone(), Refused),
            ("value_scales", json!([1e308, 1, 1, 1, 1]), Refused),
            ("model_hash", json!(""), Refused),
        ],
    );
    let p = |x: &str| f.p(x);
    let (model, keys, eval, npy, ct) = (
        p("m.onnx"),
        p("keys"),
        p("keys/eval"),
        p("x.npy"),
        p("x.ct"),
    );
    exercise(
        "plan",
        "plan.json",
        &cases,
        &|_| {},
        &[
            ("keygen", &|d, pl| {
                args(&[
                    "keygen",
                    "--plan",
                    &s(pl),
                    "--model",
                    &model,
                    "--out",
                    &s(d.join("k")),
                    "--json",
                ])
            }),
            ("encrypt", &|d, pl| {
                args(&[
                    "encrypt",
                    "--keys",
                    &keys,
                    "--plan",
                    &s(pl),
                    "--input",
                    &npy,
                    "--out",
                    &s(d.join("c.ct")),
                    "--json",
                ])
            }),
            ("infer", &|d, pl| {
                let mut a = infer(f, &s(pl), &model, &eval, &ct);
                a[10] = s(d.join("o.ct"));
                a
            }),
            ("serve", &|d, pl| {
                args(&[
                    "serve",
                    "--plan",
                    &s(pl),
                    "--model",
                    &model,
                    "--store",
                    &s(d.join("store")),
                    "--addr",
                    "127.0.0.1:0",
                ])
            }),
            ("bench serve", &|d, pl| {
                args(&[
                    "bench",
                    "serve",
                    "--plan",
                    &s(pl),
                    "--model",
                    &model,
                    "--clients",
                    "1",
                    "--requests",
                    "1",
                    "--store",
                    &s(d.join("store")),
                ])
            }),
        ],
    );
}

/// Offsets in a `ckks` object (`RSDU` header): magic, version, kind,
/// parameter id, name length; the body starts after the name.
fn rsdu_body(b: &[u8]) -> usize {
    assert_eq!(&b[..4], b"RSDU");
    16 + b[15] as usize
}

fn u32le(x: u32) -> [u8; 4] {
    x.to_le_bytes()
}

/// Header flips and length claims of a `ckks` object whose body starts
/// with a u32 limb or digit count at `count_at` (relative to the body).
fn rsdu_cases(v: &[u8], count_at: &[usize]) -> Vec<Case> {
    let body = rsdu_body(v);
    let mut header = vec![0, 4, 6, 7, 14, 15, body - 1];
    header.extend(count_at.iter().map(|c| body + c + 3));
    let mut c = standard(v, &header, MayPass, Refused);
    c.push(case("name-len-255", patched(v, 15, &[255]), Refused));
    for &at in count_at {
        c.push(case(
            format!("count@{}=2^32-1", body + at),
            patched(v, body + at, &u32le(u32::MAX)),
            Refused,
        ));
        c.push(case(
            format!("count@{}=2^20", body + at),
            patched(v, body + at, &u32le(1 << 20)),
            Refused,
        ));
    }
    c
}

/// Mutations of the client's `secret.key` or `public.key`; the public key
/// also with its first two coefficients swapped (each below its prime: a
/// well-formed key, of no secret the directory holds).
fn client_key_cases(v: &[u8], file: &str) -> Vec<Case> {
    let mut cases = rsdu_cases(v, &[0]);
    if file == "public.key" {
        let at = rsdu_body(v) + 4;
        let mut b = v.to_vec();
        b[at..at + 8].copy_from_slice(&v[at + 8..at + 16]);
        b[at + 8..at + 16].copy_from_slice(&v[at..at + 8]);
        cases.push(case("coefficients-swapped", b, Refused));
    }
    cases
}

/// The client's secret key, read by `decrypt` (with the public key beside
/// it, checked to be its pair), and public key, read by `encrypt` (checked
/// against the directory's `key.id`).
#[test]
fn client_keys() {
    let f = fixture();
    let p = |x: &str| f.p(x);
    let (plan, npy, y) = (p("plan.json"), p("x.npy"), p("y.ct"));
    for (file, other) in [("secret.key", "public.key"), ("public.key", "secret.key")] {
        let v = f.read(&format!("keys/{file}"));
        // body: limb count u32, then coefficients (a flip may stay below
        // its prime, and one in a low byte changes the key by noise: a
        // valid pair; a larger change is not a pair any more)
        let cases = client_key_cases(&v, file);
        let encrypt: &Args = &|d, _| {
            args(&[
                "encrypt",
                "--keys",
                &s(d.join("keys")),
                "--plan",
                &plan,
                "--input",
                &npy,
                "--out",
                &s(d.join("c.ct")),
            ])
        };
        let decrypt: &Args =
            &|d, _| args(&["decrypt", "--keys", &s(d.join("keys")), "--input", &y]);
        exercise(
            file,
            &format!("keys/{file}"),
            &cases,
            &|d| copy(d, &[&format!("keys/{other}"), "keys/key.id"]),
            &[if file == "secret.key" {
                ("decrypt", decrypt)
            } else {
                ("encrypt", encrypt)
            }],
        );
    }
}

/// Mutations of an `eval.keys` file (of the leveled fixture's set, N = 4096).
fn eval_keys_cases(v: &[u8]) -> Vec<Case> {
    // body: flags u8, relinearization key (digits u32, limbs u32, ...),
    // Galois keys (count u32, then per key: element u64, digits, limbs, ...)
    let body = rsdu_body(v);
    let mut cases = rsdu_cases(v, &[1, 5]);
    cases.push(case("flags=0xff", patched(v, body, &[0xff]), Refused));
    let digits = u32::from_le_bytes(v[body + 1..body + 5].try_into().unwrap()) as usize;
    let limbs = u32::from_le_bytes(v[body + 5..body + 9].try_into().unwrap()) as usize;
    let galois = body + 9 + 2 * digits * limbs * 4096 * 8;
    for (name, x) in [
        ("galois-count=2^32-1", u32::MAX),
        ("galois-count=4096", 4096),
    ] {
        cases.push(case(name, patched(v, galois, &u32le(x)), Refused));
    }
    cases.push(case(
        "galois-element-even",
        patched(v, galois + 4, &2u64.to_le_bytes()),
        Refused,
    ));
    cases
}

/// The server's evaluation keys, read by `infer`.
#[test]
fn evaluation_keys() {
    let f = fixture();
    let cases = eval_keys_cases(&f.read("keys/eval/eval.keys"));
    let p = |x: &str| f.p(x);
    let (plan, model, ct) = (p("plan.json"), p("m.onnx"), p("x.ct"));
    exercise(
        "eval.keys",
        "eval/eval.keys",
        &cases,
        &|_| {},
        &[("infer", &|d, _| {
            let mut a = infer(f, &plan, &model, &s(d.join("eval")), &ct);
            a[10] = s(d.join("o.ct"));
            a
        })],
    );
}

/// The server's bootstrapping keys (`eval/bootstrap.keys`, beside a valid
/// `eval.keys`), read by `infer` for a plan that bootstraps; also the file
/// missing, and the evaluation keys where it belongs (two files of one
/// kind).
#[test]
fn bootstrapping_keys() {
    let f = fixture();
    let b = boot_fixture();
    let at = |x: &str| format!("{b}/{x}");
    let v = f.read(&at("keys/eval/bootstrap.keys"));
    // body: the to-sparse key (digits u32, limbs u32, its polynomials:
    // level 0), then the from-sparse key (the same, at the top level)
    let body = rsdu_body(&v);
    let word = |i: usize| u32::from_le_bytes(v[i..i + 4].try_into().unwrap());
    let second = 8 + 2 * word(body) as usize * word(body + 4) as usize * 4096 * 8;
    let top_limbs = word(body + second + 4);
    let mut cases = rsdu_cases(&v, &[0, 4, second, second + 4]);
    cases.push(case(
        format!("to-sparse-limbs={top_limbs}"),
        patched(&v, body + 4, &u32le(top_limbs)),
        Refused,
    ));
    cases.push(case(
        "from-sparse-limbs=5",
        patched(&v, body + second + 4, &v[body + 4..body + 8]),
        Refused,
    ));
    // a client key where the bootstrapping keys belong; keys of another set
    for (name, file) in [
        ("public.key", at("keys/public.key")),
        ("secret.key", at("keys/secret.key")),
        ("leveled-eval.keys", "keys/eval/eval.keys".to_string()),
    ] {
        cases.push(case(name, f.read(&file), Refused));
    }
    let (plan, model, ct) = (f.p(&at("plan.json")), f.p("m.onnx"), f.p(&at("x.ct")));
    let infer_in = |d: &Path| {
        let mut a = infer(f, &plan, &model, &s(d.join("eval")), &ct);
        a[10] = s(d.join("o.ct"));
        a
    };
    let eval_keys = at("keys/eval/eval.keys");
    exercise(
        "bootstrap.keys",
        "eval/bootstrap.keys",
        &cases,
        &|d| link_to(d, &eval_keys, "eval/eval.keys"),
        &[("infer", &|d, _| infer_in(d))],
    );
    // Directories no single file's mutation makes.
    let root = f.dir.join("cases/bootstrap.keys-dirs");
    let mut failures = Vec::new();
    for (name, boot) in [("missing", None), ("eval.keys-twice", Some(&eval_keys))] {
        let d = root.join(name);
        link_to(&d, &eval_keys, "eval/eval.keys");
        if let Some(from) = boot {
            link_to(&d, from, "eval/bootstrap.keys");
        }
        failures.extend(check(
            "infer",
            "bootstrap.keys",
            name,
            Refused,
            &infer_in(&d),
        ));
        std::fs::remove_dir_all(&d).ok();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An encrypted tensor with its metadata replaced by `edit`ed metadata.
fn with_meta(v: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let mlen = u32::from_le_bytes(v[7..11].try_into().unwrap()) as usize;
    let mut meta: serde_json::Value = serde_json::from_slice(&v[11..11 + mlen]).unwrap();
    edit(&mut meta);
    let m = serde_json::to_vec(&meta).unwrap();
    let mut out = v[..7].to_vec();
    out.extend(u32le(m.len() as u32));
    out.extend(m);
    out.extend_from_slice(&v[11 + mlen..]);
    out
}

/// Encrypted inputs (`infer`) and results (`decrypt`): the `RSDT` header
/// (magic, version, kind, metadata length, metadata, ciphertext count),
/// each ciphertext's length, and the `RSDU` ciphertext inside (level,
/// slots, scale, degree).
#[test]
fn ciphertexts() {
    use serde_json::json;
    let f = fixture();
    let p = |x: &str| f.p(x);
    let (plan, model, eval, keys) = (p("plan.json"), p("m.onnx"), p("keys/eval"), p("keys"));
    for (file, input) in [("x.ct", true), ("y.ct", false)] {
        let v = f.read(file);
        let mlen = u32::from_le_bytes(v[7..11].try_into().unwrap()) as usize;
        let count = 11 + mlen;
        let len = count + 4;
        let ct = len + 8;
        let body = ct + rsdu_body(&v[ct..]);
        let header = [
            0,
            4,
            6,
            7,
            10,
            11,
            count,
            count + 3,
            len + 7,
            ct,
            ct + 15,
            body + 3,
            body + 7,
        ];
        let mut cases = standard(&v, &header, MayPass, Refused);
        for (name, at, x) in [
            ("meta-len=2^32-1", 7, u32::MAX.to_le_bytes().to_vec()),
            ("count=2^32-1", count, u32::MAX.to_le_bytes().to_vec()),
            ("ct-len=2^64-1", len, u64::MAX.to_le_bytes().to_vec()),
            ("ct-len=2^40", len, (1u64 << 40).to_le_bytes().to_vec()),
            ("level=2^32-1", body, u32::MAX.to_le_bytes().to_vec()),
            ("slots=2^32-1", body + 4, u32::MAX.to_le_bytes().to_vec()),
            (
                "scale=NaN",
                body + 8,
                f64::NAN.to_bits().to_le_bytes().to_vec(),
            ),
            ("degree=255", body + 16, vec![255]),
        ] {
            cases.push(case(name, patched(&v, at, &x), Refused));
        }
        let big = json!(1u64 << 40);
        for (name, key, val) in [
            ("channels=2^40", "channels", big.clone()),
            ("slots=2^40", "slots", big.clone()),
            ("batch=2^40", "batch", big.clone()),
            ("base_h=2^40", "base_h", big.clone()),
        ] {
            cases.push(case(
                format!("meta-layout-{name}"),
                with_meta(&v, |m| m["layout"][key] = val.clone()),
                Refused,
            ));
        }
        cases.push(case(
            "meta-images=2^40",
            with_meta(&v, |m| m["images"] = big.clone()),
            Refused,
        ));
        cases.push(case(
            "meta-factor=-1",
            with_meta(&v, |m| m["factor"] = json!(-1.0)),
            Refused,
        ));
        cases.push(case(
            "meta-deep",
            with_meta(&v, |m| {
                *m = serde_json::from_slice(
                    &vec![b'['; 1000]
                        .into_iter()
                        .chain(vec![b']'; 1000])
                        .collect::<Vec<u8>>(),
                )
                .unwrap_or(json!(null));
            }),
            Refused,
        ));
        if input {
            exercise(
                "input.ct",
                "x.ct",
                &cases,
                &|_| {},
                &[("infer", &|d, c| {
                    let mut a = infer(f, &plan, &model, &eval, &s(c));
                    a[10] = s(d.join("o.ct"));
                    a
                })],
            );
        } else {
            exercise(
                "result.ct",
                "y.ct",
                &cases,
                &|_| {},
                &[("decrypt", &|_, c| {
                    args(&["decrypt", "--keys", &keys, "--input", &s(c)])
                })],
            );
        }
    }
}

/// The PNG's IHDR chunk with `width`, `height` and `depth`, its CRC
/// recomputed (a reader checks it first).
fn png_ihdr(v: &[u8], width: u32, height: u32, depth: u8) -> Vec<u8> {
    fn crc32(b: &[u8]) -> u32 {
        let mut c = !0u32;
        for &x in b {
            c ^= u32::from(x);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut b = v.to_vec();
    b[16..20].copy_from_slice(&width.to_be_bytes());
    b[20..24].copy_from_slice(&height.to_be_bytes());
    b[24] = depth;
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Mutations of the fixture's PNG image.
fn png_cases(png: &[u8]) -> Vec<Case> {
    // signature, IHDR length, type, width, depth, CRC; the image data is
    // checked by zlib's and the chunk's checksums, but a flip elsewhere
    // (an ancillary byte) may pass; bytes after IEND are ignored.
    let mut png_cases = standard(png, &[0, 8, 12, 16, 19, 23, 24, 29], MayPass, MayPass);
    // the last byte is IEND's checksum, not read once the image is decoded
    png_cases[3].want = MayPass;
    png_cases.push(case(
        "ihdr-2^31x2^31",
        png_ihdr(png, 1 << 31, 1 << 31, 8),
        Refused,
    ));
    png_cases.push(case("ihdr-8x65535", png_ihdr(png, 8, 65535, 8), Refused));
    png_cases.push(case("ihdr-depth-16", png_ihdr(png, 8, 8, 16), Refused));
    png_cases.push(case("ihdr-depth-3", png_ihdr(png, 8, 8, 3), Refused));
    // the first chunk after IHDR claims 2^31 - 1 bytes
    png_cases.push(case(
        "chunk-len-2^31",
        patched(png, 33, &0x7fff_ffffu32.to_be_bytes()),
        Refused,
    ));
    png_cases
}

/// Mutations of the fixture's `.npy` array.
fn npy_cases(npy: &[u8]) -> Vec<Case> {
    let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + hlen])
        .unwrap()
        .to_string();
    let shape_at = 10 + header.find("shape").unwrap();
    // magic, version, header length, the dtype and shape texts; a flip in
    // the float data gives other values (or a NaN, refused).
    let mut npy_cases = standard(
        npy,
        &[
            0,
            6,
            8,
            9,
            10 + header.find("<f4").unwrap() + 1,
            shape_at + 9,
        ],
        MayPass,
        Refused,
    );
    let with_header = |h: &str, ver2: bool| {
        let mut b = b"\x93NUMPY".to_vec();
        if ver2 {
            b.extend([2, 0]);
            b.extend((h.len() as u32).to_le_bytes());
        } else {
            b.extend([1, 0]);
            b.extend((h.len() as u16).to_le_bytes());
        }
        b.extend(h.as_bytes());
        b.extend_from_slice(&npy[10 + hlen..]);
        b
    };
    for (name, shape) in [
        ("shape-2^40x8x8", "(1099511627776, 1, 8, 8)"),
        (
            "shape-overflow",
            "(4611686018427387904, 4611686018427387904)",
        ),
        ("shape-9-dims", "(1, 1, 1, 1, 1, 1, 1, 1, 64)"),
        ("shape-0", "(0, 1, 8, 8)"),
    ] {
        let h = header.replace("(1, 8, 8)", shape);
        npy_cases.push(case(name, with_header(&h, false), Refused));
    }
    npy_cases.push(case(
        "dtype-f8",
        with_header(&header.replace("<f4", "<f8"), false),
        Refused,
    ));
    npy_cases.push(case(
        "header-len-65535",
        patched(npy, 8, &[0xff, 0xff]),
        Refused,
    ));
    let mut v2 = with_header(&header, true);
    v2[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    npy_cases.push(case("v2-header-len-2^32-1", v2, Refused));
    // A stack of 2^16 images: well-formed, more than the plan's batch of one.
    let stack: Vec<f32> = (0..64 << 16).map(|i| (i % 7) as f32 / 7.0).collect();
    npy_cases.push(case(
        "stack-65536",
        nn::input::encode_npy_f32(&[1 << 16, 1, 8, 8], &stack),
        Refused,
    ));
    npy_cases
}

/// PNG images and `.npy` arrays, read by `predict`, `encrypt` and `demo`.
#[test]
fn images_and_arrays() {
    let f = fixture();
    let (png_cases, npy_cases) = (png_cases(&f.read("x.png")), npy_cases(&f.read("x.npy")));

    let p = |x: &str| f.p(x);
    let (model, keys, plan) = (p("m.onnx"), p("keys"), p("plan.json"));
    for (name, file, cases) in [("png", "x.png", &png_cases), ("npy", "x.npy", &npy_cases)] {
        exercise(
            name,
            file,
            cases,
            &|_| {},
            &[
                ("predict", &|_, x| {
                    args(&["predict", "--model", &model, "--input", &s(x)])
                }),
                ("encrypt", &|d, x| {
                    args(&[
                        "encrypt",
                        "--keys",
                        &keys,
                        "--plan",
                        &plan,
                        "--input",
                        &s(x),
                        "--out",
                        &s(d.join("c.ct")),
                    ])
                }),
                ("demo", &|_, x| {
                    args(&[
                        "demo",
                        "--model",
                        &model,
                        "--image",
                        &s(x),
                        "--params",
                        "insecure-n12",
                        "--json",
                    ])
                }),
            ],
        );
    }
}

/// `eval`'s data directories: IDX files raw and gzipped (with a gzip bomb),
/// CIFAR-10 records.
#[test]
fn data_directories() {
    let f = fixture();
    let (img, lbl) = idx(20);
    // magic, count, rows, cols; a flip in a pixel is another image.
    let mut img_cases = standard(&img, &[0, 2, 3, 4, 7, 8, 11, 12, 15], MayPass, Refused);
    for (name, at, x) in [
        ("count=2^32-1", 4, u32::MAX),
        ("rows=65535", 8, 65535),
        ("count=0", 4, 0),
    ] {
        img_cases.push(case(name, patched(&img, at, &x.to_be_bytes()), Refused));
    }
    let (zero_img, _) = idx(0);
    img_cases.push(case("no-images", zero_img, Refused));
    // magic, count; a flip in a label gives a label of 10 or more (refused)
    // or another valid one.
    let mut lbl_cases = standard(&lbl, &[0, 3, 4, 7], MayPass, Refused);
    lbl_cases.push(case(
        "count=2^32-1",
        patched(&lbl, 4, &u32::MAX.to_be_bytes()),
        Refused,
    ));
    // gzip: magic, method, flags; the deflate stream and its CRC are
    // checked, but a flip in the header's time or OS byte passes, and bytes
    // after the gzip member may be ignored.
    let gz = gzip(&img);
    let mut gz_cases = standard(&gz, &[0, 1, 2], MayPass, MayPass);
    gz_cases.push(case("bomb-300MiB", gzip_bomb(300 << 20), Refused));

    let cifar = f.read("cifar/test_batch.bin");
    // No header: the first label byte flipped is 255 (refused); a flip in
    // a pixel is another image.
    let mut cifar_cases = standard(&cifar, &[0, 3073], MayPass, Refused);
    // cuts at record boundaries (the header cuts and the middle) are
    // fewer records: valid; an empty file is no test set.
    for c in &mut cifar_cases[1..3] {
        c.want = MayPass;
    }

    let p = |x: &str| f.p(x);
    let (m28, m32) = (p("m28.onnx"), p("m32.onnx"));
    let eval = |m: &str, data: &str, d: &Path| {
        args(&[
            "eval",
            "--model",
            m,
            "--data",
            data,
            &s(d.join("data")),
            "--json",
        ])
    };
    exercise(
        "idx images",
        &format!("data/{IDX_IMAGES}"),
        &img_cases,
        &|d| {
            copy_to(
                d,
                "fmnist/t10k-labels-idx1-ubyte",
                "data/t10k-labels-idx1-ubyte",
            )
        },
        &[("eval", &|d, _| eval(&m28, "fashion-mnist", d))],
    );
    exercise(
        "idx labels",
        &format!("data/{IDX_LABELS}"),
        &lbl_cases,
        &|d| {
            copy_to(
                d,
                "fmnist/t10k-images-idx3-ubyte",
                "data/t10k-images-idx3-ubyte",
            )
        },
        &[("eval", &|d, _| eval(&m28, "fashion-mnist", d))],
    );
    exercise(
        "idx images.gz",
        &format!("data/{IDX_IMAGES}.gz"),
        &gz_cases,
        &|d| {
            copy_to(
                d,
                "fmnist/t10k-labels-idx1-ubyte",
                "data/t10k-labels-idx1-ubyte",
            )
        },
        &[("eval", &|d, _| eval(&m28, "fashion-mnist", d))],
    );
    exercise(
        "cifar",
        "data/test_batch.bin",
        &cifar_cases,
        &|_| {},
        &[("eval", &|d, _| eval(&m32, "cifar10", d))],
    );
}

/// A gzip file that inflates to an IDX header and `n` zero bytes.
fn gzip_bomb(n: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut head = vec![0, 0, 8, 3];
    for d in [(n / 784) as u32, 28, 28] {
        head.extend(d.to_be_bytes());
    }
    e.write_all(&head).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..n >> 20 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap()
}

/// Copies fixture file `from` to `to` in a case directory.
fn copy_to(d: &Path, from: &str, to: &str) {
    let to = d.join(to);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture().dir.join(from), to).unwrap();
}

/// JSON side inputs: `--calibrate` bench records (`analyze`, `compile`),
/// a model's training record (`predict`, `eval`: read leniently, a record
/// that cannot be read counts as none, so every case may pass), the
/// `eval --he --log` file.
#[test]
fn json_side_files() {
    use serde_json::json;
    let f = fixture();
    let p = |x: &str| f.p(x);
    let (m, m28) = (p("m.onnx"), p("m28.onnx"));
    let bench = f.read("bench.json");
    let bench_cases = json_cases(
        &bench,
        &[
            ("0.median_ms", json!(1e308), MayPass),
            ("0.median_ms", json!(-1.0), MayPass),
            ("5.median_ms", json!(0.0), MayPass),
            ("0.threads", json!(1u64 << 40), Refused),
            ("0.level", json!(1u64 << 40), Refused),
            ("0.level", json!(1_000_000), MayPass),
            ("0.op", json!("bootstrap"), MayPass),
            (
                "0",
                json!({"op": "bootstrap", "threads": 1, "median_ms": 1e300, "slots": 1u64 << 60}),
                MayPass,
            ),
            ("0", json!("not a record"), Refused),
        ],
    );
    exercise(
        "bench.json",
        "bench.json",
        &bench_cases,
        &|_| {},
        &[
            ("analyze", &|_, b| {
                args(&[
                    "analyze",
                    &m,
                    "--params",
                    "insecure-n12",
                    "--calibrate",
                    &s(b),
                ])
            }),
            ("compile", &|d, b| {
                args(&[
                    "compile",
                    &m,
                    "--params",
                    "insecure-n12",
                    "--calibrate",
                    &s(b),
                    "--out",
                    &s(d.join("p.json")),
                ])
            }),
        ],
    );

    let rec = f.read("m28.train.json");
    let mut rec_cases = json_cases(
        &rec,
        &[
            ("arch.input_size", json!([1u64 << 40, -1]), MayPass),
            ("arch.in_channels", json!(u64::MAX), MayPass),
            ("config", json!("x".repeat(1 << 20)), MayPass),
        ],
    );
    for c in &mut rec_cases {
        c.want = MayPass;
    }
    let png28 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/samples/fashion-mnist-0.png"
    );
    exercise(
        "train.json",
        "m28.train.json",
        &rec_cases,
        &|d| copy(d, &["m28.onnx"]),
        &[
            ("predict", &|d, _| {
                args(&[
                    "predict",
                    "--model",
                    &s(d.join("m28.onnx")),
                    "--input",
                    png28,
                ])
            }),
            ("eval", &|d, _| {
                args(&[
                    "eval",
                    "--model",
                    &s(d.join("m28.onnx")),
                    "--data",
                    "fashion-mnist",
                    &p("fmnist"),
                    "--json",
                ])
            }),
        ],
    );

    // The log's lines are results of earlier images; one for another
    // parameter set or image is not this run's, and the image is run
    // (a few seconds at insecure-n12): edits that do so may pass.
    let log = f.read("eval.log");
    let mut log_cases = json_cases(
        &log,
        &[
            ("index", json!(1u64 << 60), MayPass),
            ("index", json!(-1), Refused),
            ("seconds_by_kind", json!({"x": "y"}), Refused),
            ("params", json!("x".repeat(1 << 20)), MayPass),
        ],
    );
    // an empty log is one with no results yet
    log_cases[0].want = MayPass;
    exercise(
        "eval.log",
        "eval.log",
        &log_cases,
        &|_| {},
        &[("eval --he", &|_, l| {
            args(&[
                "eval",
                "--model",
                &m28,
                "--data",
                "fashion-mnist",
                &p("fmnist"),
                "--he",
                "--params",
                "insecure-n12",
                "--images",
                "1",
                "--log",
                &s(l),
                "--json",
            ])
        })],
    );
}

/// A `residue serve` for the fixture's plan on a free loopback port,
/// killed when dropped (also when a test panics).
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Self {
        use std::io::BufRead;
        let f = fixture();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args([
                "serve",
                "--plan",
                &f.p("plan.json"),
                "--model",
                &f.p("m.onnx"),
                "--store",
                &s(dir.join("store")),
                "--addr",
                "127.0.0.1:0",
                "--poll-secs",
                "0.2",
                "--threads",
                "2",
                "--key-cache-mib",
                "128",
            ])
            .env("RAYON_NUM_THREADS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starts residue serve");
        let mut srv = Self {
            child,
            url: String::new(),
        };
        let mut line = String::new();
        std::io::BufReader::new(srv.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        srv.url = match line.trim().strip_prefix("listening on ") {
            Some(u) => u.to_string(),
            None => panic!(
                "no address: {line:?}; log: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ),
        };
        srv
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `residue client` against a real server: its input (the PNG and `.npy`
/// cases) and each file of its key directory (`secret.key`, `public.key`,
/// `eval/eval.keys`, uploaded and refused by the server or, in its header,
/// by the client before sending it; `server.json`). The server must
/// survive every case.
#[test]
fn client() {
    use serde_json::json;
    let f = fixture();
    let dir = f.dir.join("client");
    std::fs::create_dir_all(&dir).unwrap();
    let mut srv = Server::start(&dir);
    let url = srv.url.clone();
    let client = |d: &Path, keys: &Path, input: &str| {
        args(&[
            "client",
            "--server",
            &url,
            "--plan-out",
            &s(d.join("plan.json")),
            "--keys",
            &s(keys),
            "--input",
            input,
            "--timeout-secs",
            "15",
            "--json",
        ])
    };
    // The fixture's keys, registered with the server (`server.json`).
    for k in ["secret.key", "public.key"] {
        copy_to(&dir, &format!("keys/{k}"), &format!("keys/{k}"));
    }
    link_to(&dir, "keys/eval/eval.keys", "keys/eval/eval.keys");
    let keys = dir.join("keys");
    ok(&client(&dir, &keys, &f.p("x.npy")));
    let reg = f.read("client/keys/server.json");
    let r: serde_json::Value = serde_json::from_slice(&reg).unwrap();
    assert_eq!(r["server"], json!(url), "{r}");

    // The input, with registered keys.
    for (name, file, cases) in [
        ("png", "x.png", png_cases(&f.read("x.png"))),
        ("npy", "x.npy", npy_cases(&f.read("x.npy"))),
    ] {
        exercise(
            name,
            file,
            &cases,
            &|_| {},
            &[("client", &|d, x| client(d, &keys, &s(x)))],
        );
    }
    // A key directory: `files` of the registered one (links: the client
    // only reads them; `server.json` is rewritten by a new upload, so it
    // is copied).
    let key_dir = |d: &Path, files: &[&str]| {
        for x in files {
            let from = format!("client/keys/{x}");
            if *x == "server.json" {
                copy_to(d, &from, &format!("keys/{x}"));
            } else {
                link_to(d, &from, &format!("keys/{x}"));
            }
        }
    };
    let npy = f.p("x.npy");
    let run_client: &Args<'_> = &|d, _| client(d, &d.join("keys"), &npy);
    for (file, others) in [
        (
            "secret.key",
            ["public.key", "eval/eval.keys", "server.json"],
        ),
        (
            "public.key",
            ["secret.key", "eval/eval.keys", "server.json"],
        ),
    ] {
        exercise(
            file,
            &format!("keys/{file}"),
            &client_key_cases(&f.read(&format!("keys/{file}")), file),
            &|d| key_dir(d, &others),
            &[("client", run_client)],
        );
    }
    // Without `server.json`, so that the keys are uploaded.
    let mut eval_cases = eval_keys_cases(&f.read("keys/eval/eval.keys"));
    eval_cases.push(case("secret.key", f.read("keys/secret.key"), Refused));
    exercise(
        "eval.keys",
        "keys/eval/eval.keys",
        &eval_cases,
        &|d| key_dir(d, &["secret.key", "public.key"]),
        &[("client", run_client)],
    );
    // A registration for another key, token, server or plan is not this
    // one: the keys are uploaded again; one that is not a registration is
    // refused.
    let other = "0".repeat(32);
    let reg_cases = json_cases(
        &reg,
        &[
            ("key_id", json!(other), MayPass),
            ("key_id", json!("../../v1/info"), Refused),
            ("key_id", json!(1), Refused),
            ("token", json!("0".repeat(64)), MayPass),
            ("token", json!(""), Refused),
            ("token", json!("x".repeat(1 << 20)), Refused),
            ("server", json!("http://127.0.0.1:1"), MayPass),
            ("plan_hash", json!("0".repeat(64)), MayPass),
            ("plan_hash", json!(null), Refused),
        ],
    );
    exercise(
        "server.json",
        "keys/server.json",
        &reg_cases,
        &|d| key_dir(d, &["secret.key", "public.key", "eval/eval.keys"]),
        &[("client", run_client)],
    );
    // The registered keys still serve, and the server is alive.
    ok(&client(&dir, &keys, &f.p("x.png")));
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "the server died; log: {}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
}
