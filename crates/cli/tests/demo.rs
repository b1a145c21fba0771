//! `residue demo` with no model or image runs the model and image embedded
//! in the binary: from any working directory, with no source tree beside
//! it (after `cargo install`, in the container image).

mod common;

/// Plain `residue demo` (at a fast insecure set) from an empty directory:
/// it names the bundled model and image, prints the class names from the
/// bundled training record, and the encrypted class is the plaintext one.
#[test]
fn demo_runs_the_bundled_model_from_anywhere() {
    let dir = std::env::temp_dir().join(format!("residue-demo-cwd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_residue"))
        .current_dir(&dir)
        .args([
            "demo",
            "--params",
            "insecure-boot-n12-l9",
            "--json-out",
            "report.json",
        ])
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "compiling bundled dirac-shared20 (models/dirac-shared20.onnx) for insecure-boot-n12-l9"
        ),
        "{err}"
    );
    assert!(
        err.contains("encrypting bundled fashion-mnist-0 (data/samples/fashion-mnist-0.png)"),
        "{err}"
    );
    assert!(!err.contains("crates/cli"), "a build-time path: {err}");
    // Fashion-MNIST class 9, named from the bundled training record.
    assert!(out.contains("class 9 (Ankle boot)"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        v["model"],
        "bundled dirac-shared20 (models/dirac-shared20.onnx)"
    );
    assert_eq!(
        v["image"],
        "bundled fashion-mnist-0 (data/samples/fashion-mnist-0.png)"
    );
    assert_eq!(v["plain_class"], 9);
    assert_eq!(v["he_class"], 9);
    // Nothing else was written where it ran.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.json"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
