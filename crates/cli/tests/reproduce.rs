//! `residue reproduce` end to end at an insecure test set: the records,
//! the plots, resuming, and refusing bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(p: &str) -> String {
    format!("{}/../../{p}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residue"))
        .arg("reproduce")
        .args(args)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory under the system temp dir, removed on success.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("residue-repro-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn path(&self, p: &str) -> String {
        self.0.join(p).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The record fields the issue names, all present.
const FIELDS: [&str; 11] = [
    "model",
    "params",
    "placement",
    "images",
    "accuracy_plain",
    "accuracy_he",
    "bootstraps",
    "latency_s",
    "estimated_s",
    "peak_mem_bytes",
    "speedup_vs_resnet",
];

fn lines(path: &str) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

/// One bundled model, one encrypted image: the records, the files, and a
/// rerun that does no encrypted work and writes the same results.
#[test]
fn reproduce_one_model_and_resume() {
    let dir = TempDir::new("one");
    let out = dir.path("out");
    let sample = repo("data/fashion-mnist-sample");
    let model = repo("models/dirac20.onnx");
    let args = [
        "--params",
        "insecure-boot-n12-l9",
        "--images",
        "1",
        "--models",
        &model,
        "--data",
        "fashion-mnist",
        &sample,
        "--plain-limit",
        "100",
        "--out",
        &out,
        "--json",
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e})"));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{out}/results.json")).unwrap())
            .unwrap();
    assert_eq!(printed, written);
    let recs = written.as_array().unwrap();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    for f in FIELDS {
        assert!(r.get(f).is_some(), "no `{f}` in {r}");
    }
    assert_eq!(r["model"], "dirac20");
    assert_eq!(r["params"], "insecure-boot-n12-l9");
    assert_eq!(r["placement"], "optimal");
    assert_eq!(r["structure"], "chain");
    assert_eq!(r["images"], 1);
    assert_eq!(r["plain_images"], 100);
    let acc = r["accuracy_plain"].as_f64().unwrap();
    assert!(acc > 0.6 && acc <= 1.0, "{r}");
    assert_eq!(r["argmax_agreement"], 1.0, "{r}");
    // Its own baseline.
    assert_eq!(r["speedup_vs_resnet"], 1.0);
    assert!(r["bootstraps"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["bootstraps"], r["bootstraps_planned"], "{r}");
    assert!(r["latency_s"].as_f64().unwrap() > 0.0);
    assert!(r["estimated_s"].as_f64().unwrap() > 0.0);
    assert!(r["peak_mem_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(r["key_bytes"].as_u64().unwrap() > 0);
    for f in ["accuracy-latency", "timeline-insecure-boot-n12-l9"] {
        common::check_png(&Path::new(&out).join(format!("{f}.png")));
        common::check_svg(&Path::new(&out).join(format!("{f}.svg")));
    }
    let md = std::fs::read_to_string(format!("{out}/results.md")).unwrap();
    assert!(
        md.contains("| dirac20 | chain | insecure-boot-n12-l9 | optimal |"),
        "{md}"
    );
    assert!(
        md.contains("residue reproduce --params insecure-boot-n12-l9"),
        "{md}"
    );
    assert!(md.contains("CPU kernel path `"), "{md}");
    assert!(md.contains("](accuracy-latency.svg)"), "{md}");
    assert!(md.contains("Insecure parameter set"), "{md}");
    let log = format!("{out}/dirac20/he-insecure-boot-n12-l9-optimal.jsonl");
    assert_eq!(lines(&log), 1);

    // Again: nothing encrypted runs, the results are the same.
    let args2: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let o = run(&args2);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("0 encrypted images run"), "{err}");
    assert!(!err.contains("compiling (optimal placement)"), "{err}");
    assert_eq!(lines(&log), 1);
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{out}/results.json")).unwrap())
            .unwrap();
    assert_eq!(again, written);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("| dirac20 | chain |"), "{table}");
    assert_eq!(r["fused_squares"], true, "{r}");

    // Two-level activations (the paper's setting) in the same directory:
    // the one-level image is not reused, the record says which it is.
    let mut args4 = args.to_vec();
    args4.push("--no-fused-squares");
    let o = run(&args4);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&log), 2);
    let two: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &two.as_array().unwrap()[0];
    assert_eq!(t["fused_squares"], false, "{t}");
    assert!(
        t["bootstraps"].as_u64().unwrap() >= r["bootstraps"].as_u64().unwrap(),
        "{t} vs {r}"
    );

    // Other weights under the same name are refused, not mixed in.
    let other = dir.path("dirac20.onnx");
    common::small_model(Path::new(&other), 1, 28, 0.0);
    let mut args3 = args2.clone();
    let i = args3.iter().position(|a| *a == model).unwrap();
    args3[i] = &other;
    let o = run(&args3);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("holds results of other `dirac20` weights"),
        "{err}"
    );
}

/// Two small models (no bootstraps at this set, so seconds each), both
/// placements: speed-ups against the first, and a greedy plan that is the
/// optimal one is measured once.
#[test]
fn reproduce_two_models_both_placements() {
    let dir = TempDir::new("two");
    let (a, b) = (dir.path("small-a.onnx"), dir.path("small-b.onnx"));
    common::small_model(Path::new(&a), 1, 28, 0.0);
    common::small_model(Path::new(&b), 1, 28, 1.0);
    let out = dir.path("out");
    let sample = repo("data/fashion-mnist-sample");
    let models = format!("{a},{b}");
    let o = run(&[
        "--params",
        "insecure-boot-n12-l9",
        "--images",
        "2",
        "--models",
        &models,
        "--data",
        "fashion-mnist",
        &sample,
        "--plain-limit",
        "20",
        "--placement",
        "both",
        "--threads",
        "1",
        "--rounds",
        "2",
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = v.as_array().unwrap();
    assert_eq!(recs.len(), 4, "{v}");
    // Two rounds: a's first image, b's first, a's second, b's second.
    let finished = |m: &str| -> Vec<f64> {
        std::fs::read_to_string(format!("{out}/{m}/he-insecure-boot-n12-l9-optimal.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let r: serde_json::Value = serde_json::from_str(l).unwrap();
                r["finished_unix_s"].as_f64().unwrap()
            })
            .collect()
    };
    let (ta, tb) = (finished("small-a"), finished("small-b"));
    assert_eq!((ta.len(), tb.len()), (2, 2));
    assert!(
        ta[0] < tb[0] && tb[0] < ta[1] && ta[1] < tb[1],
        "{ta:?} {tb:?}"
    );
    for r in recs {
        for f in FIELDS {
            assert!(r.get(f).is_some(), "no `{f}` in {r}");
        }
        assert_eq!(r["images"], 2);
        assert_eq!(r["threads"], 1);
        assert_eq!(r["baseline"], "small-a");
        assert!(r["speedup_vs_resnet"].as_f64().unwrap() > 0.0, "{r}");
    }
    let placements: Vec<&str> = recs
        .iter()
        .map(|r| r["placement"].as_str().unwrap())
        .collect();
    assert_eq!(placements, ["optimal", "greedy", "optimal", "greedy"]);
    // No bootstrap either way: one plan, measured once.
    assert_eq!(recs[1]["same_plan_as"], "optimal", "{}", recs[1]);
    assert_eq!(recs[1]["latency_s"], recs[0]["latency_s"]);
    assert!(
        !Path::new(&format!(
            "{out}/small-a/he-insecure-boot-n12-l9-greedy.jsonl"
        ))
        .exists()
    );
    let md = std::fs::read_to_string(format!("{out}/results.md")).unwrap();
    assert!(md.contains("measured once"), "{md}");
    common::check_png(&Path::new(&out).join("timeline-insecure-boot-n12-l9.png"));
}

/// Bad input: a one-line error and exit status 1, before any work.
#[test]
fn reproduce_refuses_bad_input() {
    let dir = TempDir::new("bad");
    let out = dir.path("out");
    let model = repo("models/dirac20.onnx");
    for (args, want) in [
        (
            vec!["--models", "/nonexistent/model.onnx"],
            "error: model /nonexistent/model.onnx not found",
        ),
        (vec!["--images", "0"], "error: --images 0"),
        (
            vec!["--params", "no-such-set"],
            "error: --params no-such-set: ",
        ),
        (
            vec!["--placement", "fast"],
            "error: unknown placement `fast`",
        ),
        (vec!["--plain-limit", "0"], "error: --plain-limit 0"),
        (
            vec!["--baseline", "resnet99"],
            "error: --baseline resnet99: not one of the models",
        ),
        (vec!["--params", "insecure-n12"], "error: compiling"),
    ] {
        let mut a = vec!["--out", &out, "--models", &model];
        a.extend(args.iter().copied());
        let o = run(&a);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // Nothing was written.
    assert!(!Path::new(&out).exists());
}

/// `residue eval --he` of `model` on the first bundled Fashion-MNIST
/// sample image at `insecure-n12`, logging to `log`, with `--json` and
/// `extra` arguments.
fn eval_he_one(model: &str, log: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residue"))
        .args(["eval", "--model", model, "--data", "fashion-mnist"])
        .arg(repo("data/fashion-mnist-sample"))
        .args(["--he", "--images", "1", "--params", "insecure-n12"])
        .args(["--log", log, "--json"])
        .args(extra)
        .output()
        .unwrap()
}

/// `eval --he --placement`: the log records the placement, and a run at
/// one placement does not count another's images as done.
#[test]
fn eval_he_log_is_per_placement() {
    let dir = TempDir::new("eval-placement");
    let model = dir.path("small.onnx");
    common::small_model(Path::new(&model), 1, 28, 0.0);
    let log = dir.path("eval.jsonl");
    let eval = |placement: &str| eval_he_one(&model, &log, &["--placement", placement]);
    let placements = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["placement"].as_str().unwrap().to_string()
            })
            .collect()
    };
    for (p, want) in [
        ("optimal", vec!["optimal"]),
        ("greedy", vec!["optimal", "greedy"]),
        ("greedy", vec!["optimal", "greedy"]),
        ("optimal", vec!["optimal", "greedy"]),
    ] {
        let o = eval(p);
        assert!(o.status.success(), "{p}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["placement"], p);
        assert_eq!(v["images"], 1);
        assert_eq!(placements(), want, "after {p}");
    }
    let o = eval("fast");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: unknown placement `fast` (optimal, greedy)")
            && err.trim_end().lines().count() == 1,
        "{err}"
    );
}

/// `eval --he --log` reuses only its own plan's records: other weights
/// under the same file name run again, and a record from before the
/// plan's hash was logged is reused only when its bootstraps per
/// inference are the plan's.
#[test]
fn eval_he_log_is_per_plan_and_weights() {
    let dir = TempDir::new("eval-plan");
    let model = dir.path("small.onnx");
    let log = dir.path("eval.jsonl");
    let eval = || {
        let o = eval_he_one(&model, &log, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    common::small_model(Path::new(&model), 1, 28, 0.0);
    eval();
    let first = lines();
    assert_eq!(first.len(), 1);
    let shape = first[0]["plan_shape"].as_str().unwrap().to_string();
    assert_eq!(shape.len(), 64, "{shape}");
    // The same plan again: reused, nothing runs.
    eval();
    assert_eq!(lines().len(), 1);
    // Other weights under the same name: a new record of another plan.
    common::small_model(Path::new(&model), 1, 28, 0.5);
    eval();
    let after = lines();
    assert_eq!(after.len(), 2);
    assert_ne!(after[1]["plan_shape"], after[0]["plan_shape"]);
    // A record without the hash (as written before session 22): reused
    // when its bootstraps are the plan's, not when they differ.
    let legacy = |bootstraps: u64| {
        let mut r = after[1].clone();
        r.as_object_mut().unwrap().remove("plan_shape");
        r["bootstraps"] = bootstraps.into();
        std::fs::write(&log, format!("{r}\n")).unwrap();
    };
    legacy(after[1]["bootstraps"].as_u64().unwrap());
    eval();
    assert_eq!(lines().len(), 1, "a matching legacy record is reused");
    legacy(7);
    eval();
    assert_eq!(lines().len(), 2, "a legacy record of another plan is not");
}

/// `eval --he --calibrate`: the plan is priced with a `residue bench ckks`
/// file (as `analyze --calibrate`, and as `reproduce --calibrate` prices
/// its estimates, which it passes on); a missing file is a one-line error.
#[test]
fn eval_he_calibrate_prices_the_plan() {
    let dir = TempDir::new("eval-calibrate");
    let model = dir.path("small.onnx");
    common::small_model(Path::new(&model), 1, 28, 0.0);
    let log = dir.path("eval.jsonl");
    let bench = repo("docs/data/bench-n16-boot.json");
    let o = eval_he_one(&model, &log, &["--calibrate", &bench]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 1);
    let o = eval_he_one(&model, &log, &["--calibrate", "/nonexistent/bench.json"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: reading /nonexistent/bench.json")
            && err.trim_end().lines().count() == 1,
        "{err}"
    );
}
