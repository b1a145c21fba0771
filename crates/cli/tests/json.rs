//! One JSON convention for every subcommand that reports numbers: `--json`
//! prints the report as JSON on stdout (and nothing else there), and
//! `--json-out FILE` writes the same JSON to FILE.

mod common;
use common::ok;

/// Repository path of `rel`.
fn repo(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// The subcommands (nested ones too) whose help offers `--json`.
fn with_json(prefix: &[&str], out: &mut Vec<(Vec<String>, String)>) {
    let mut args = prefix.to_vec();
    args.push("--help");
    let help = ok(&args);
    let subs: Vec<String> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    for s in &subs {
        let mut p = prefix.to_vec();
        p.push(s);
        with_json(&p, out);
    }
    if help.contains("--json") {
        out.push((prefix.iter().map(|s| s.to_string()).collect(), help));
    }
}

#[test]
fn every_json_flag_is_a_switch_with_a_json_out_beside_it() {
    let mut cmds = Vec::new();
    with_json(&[], &mut cmds);
    assert!(cmds.len() >= 12, "{}", cmds.len());
    for (cmd, help) in &cmds {
        let line = |flag: &str| {
            help.lines()
                .find(|l| {
                    // `--flag  description` or, in clap's long layout,
                    // `--flag` alone with the description below.
                    let t = l.trim();
                    t == flag || t.starts_with(&format!("{flag} "))
                })
                .unwrap_or_else(|| panic!("{cmd:?}: no {flag}: {help}"))
                .to_string()
        };
        assert!(
            !line("--json").contains("--json <"),
            "{cmd:?}: --json takes a value"
        );
        assert!(
            line("--json-out").contains("--json-out <FILE>"),
            "{cmd:?}: {help}"
        );
    }
}

#[test]
fn json_prints_what_json_out_writes() {
    let dir = std::env::temp_dir().join(format!("residue-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = repo("models/dirac-shared20.onnx");
    let image = repo("data/samples/fashion-mnist-0.png");
    let sample = repo("data/fashion-mnist-sample");
    let cases: Vec<Vec<&str>> = vec![
        vec!["params"],
        vec!["analyze", &model, "--params", "n16-boot"],
        vec!["predict", "--model", &model, "--input", &image],
        vec![
            "eval",
            "--model",
            &model,
            "--data",
            "fashion-mnist",
            &sample,
            "--limit",
            "20",
        ],
    ];
    for (i, args) in cases.iter().enumerate() {
        let mut a = args.clone();
        a.push("--json");
        let stdout = ok(&a);
        let printed: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{a:?}: stdout is not only JSON ({e}): {stdout}"));
        let file = dir.join(format!("{i}.json"));
        let mut a = args.clone();
        let f = file.to_string_lossy().into_owned();
        a.extend(["--json-out", &f]);
        let text = ok(&a);
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "{a:?}: text expected"
        );
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let strip = |mut v: serde_json::Value| {
            // timings differ from run to run
            if let Some(o) = v.as_object_mut() {
                o.remove("seconds");
            }
            v
        };
        assert_eq!(strip(printed), strip(written), "{args:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An encrypted run with `--json` prints only the JSON report on stdout
/// (progress and messages go to stderr): `eval --he` of a small model on
/// one bundled test image at an insecure set.
#[test]
fn eval_he_json_stdout_is_only_json() {
    let dir = std::env::temp_dir().join(format!("residue-json-he-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m28.onnx");
    common::small_model(&model, 1, 28, 0.0);
    let sample = repo("data/fashion-mnist-sample");
    let out = ok(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        "fashion-mnist",
        &sample,
        "--he",
        "--images",
        "1",
        "--params",
        "insecure-n12",
        "--json",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}): {out}"));
    assert_eq!(v["images"], 1, "{out}");
    assert_eq!(v["params"], "insecure-n12", "{out}");
    assert_eq!(v["agreement"], 1, "{out}");
}
