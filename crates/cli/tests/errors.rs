//! Errors are one line and say each thing once.

use std::process::Command;

/// A missing file: exit 1, one line, the OS error once (library errors
/// carry their source's text, and the binary prints the cause chain).
#[test]
fn missing_files_give_one_line_without_repeats() {
    for args in [
        &[
            "eval",
            "--model",
            "/nonexistent.onnx",
            "--data",
            "fashion-mnist",
        ][..],
        &["analyze", "/nonexistent.onnx"][..],
        &[
            "predict",
            "--model",
            "/nonexistent.onnx",
            "--input",
            "/nonexistent.png",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("os error 2").count(), 1, "{args:?}: {err}");
    }
}
