//! What the help and the documentation name exists: every subcommand that
//! `residue --help` lists (and every nested one, e.g. `bench ckks`) answers
//! `--help`, and every `residue SUB --flag` written in the README, `docs/`
//! and the crates' READMEs names a subcommand and flags the binary has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::ok;

/// The subcommands a help text lists under `Commands:` (`help` left out).
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path (`["bench", "ckks"]`, ...) below `prefix` and its
/// `--help` text, found by running `--help` on each.
fn walk(prefix: &[String], out: &mut BTreeMap<Vec<String>, String>) {
    let mut args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    args.push("--help");
    let help = ok(&args);
    assert!(help.contains("Usage: residue"), "{args:?}: {help}");
    for c in commands(&help) {
        let mut p = prefix.to_vec();
        p.push(c);
        walk(&p, out);
    }
    out.insert(prefix.to_vec(), help);
}

/// All command paths with their help texts.
fn all_help() -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    walk(&[], &mut out);
    out
}

#[test]
fn every_listed_subcommand_answers_help() {
    let all = all_help();
    let names: Vec<String> = all.keys().map(|k| k.join(" ")).collect();
    // The commands the README's "Commands" section documents, at least.
    for want in [
        "params",
        "demo",
        "compile",
        "keygen",
        "encrypt",
        "infer",
        "decrypt",
        "serve",
        "client",
        "bench ckks",
        "bench serve",
        "eval",
        "analyze",
        "predict",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    // `train` only exists with the `train` feature; without it the help
    // must not promise it as a command.
    if !cfg!(feature = "train") {
        assert!(!names.iter().any(|n| n == "train"), "{names:?}");
    }
    // Nor anywhere else in the top-level help.
    if !cfg!(feature = "train") {
        let top = &all[&Vec::new()];
        assert!(!top.contains("train"), "{top}");
    }
}

/// The repository's documentation files: README.md, docs/*.md and the
/// crates' READMEs.
fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    for dir in [
        "docs",
        "data",
        "crates/nn",
        "crates/train",
        "crates/ckks",
        "crates/serve",
    ] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// One documented invocation: the words after `residue` and the flags.
struct Mention {
    at: String,
    words: Vec<String>,
    flags: Vec<String>,
    /// Flags written with a file-like word after them.
    valued: Vec<(String, String)>,
}

/// Every `residue SUB ...` in `text`: in a code block, the rest of the line
/// up to a `#` comment (with continuation lines that start with `[`, `--`
/// or follow a `\`); elsewhere, the rest of the backtick span.
fn mentions(file: &str, text: &str) -> Vec<Mention> {
    let mut out: Vec<Mention> = Vec::new();
    let mut in_code = false;
    let mut continues = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continues = false;
            continue;
        }
        let t = line.trim_start();
        if in_code && continues && (t.starts_with('[') || t.starts_with("--")) {
            let code = t.split(" #").next().unwrap_or_default();
            if let Some(m) = out.last_mut() {
                m.flags.extend(flags(code));
                m.valued.extend(valued(code));
            }
            continues = code.trim_end().ends_with('\\') || continues;
            continue;
        }
        continues = false;
        let mut rest = line;
        while let Some(pos) = find_residue(rest) {
            let after = &rest[pos + "residue ".len()..];
            let before_tick = rest[..pos].matches('`').count() % 2 == 1;
            let span = if in_code {
                after.split(" #").next().unwrap_or_default()
            } else if before_tick {
                after.split('`').next().unwrap_or_default()
            } else {
                // Prose outside code: only the word after `residue`.
                after
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                    .next()
                    .unwrap_or_default()
            };
            let words: Vec<String> = span
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .map(str::to_string)
                .collect();
            if !words.is_empty() {
                out.push(Mention {
                    at: format!("{file}:{}", i + 1),
                    words,
                    flags: flags(span),
                    valued: valued(span),
                });
                if in_code {
                    continues = true;
                }
            }
            rest = &after[span.len().min(after.len())..];
        }
    }
    out
}

/// Where `residue ` starts as a command word (at the line start, after a
/// space, a `/` of a path, a backtick or `(`).
fn find_residue(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = s[from..].find("residue ") {
        let at = from + p;
        let prev = s[..at].chars().last();
        if prev.is_none_or(|c| matches!(c, ' ' | '/' | '`' | '(' | '|')) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The `--flags` of a command line.
fn flags(s: &str) -> Vec<String> {
    flag_values(s).into_iter().map(|(f, _)| f).collect()
}

/// The `--flags` of a command line, each with the word after it when that
/// word reads as a file argument (`FILE`, `-`, `x.json`, `out/`): a flag that
/// takes no value must not be written with one.
fn flag_values(s: &str) -> Vec<(String, Option<String>)> {
    let words: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '|'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let Some(name) = w.strip_prefix("--").filter(|n| !n.is_empty()) else {
            continue;
        };
        let name = name.split('=').next().unwrap_or_default();
        let f = format!(
            "--{}",
            name.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        );
        let value = words
            .get(i + 1)
            .map(|v| v.trim_end_matches(['`', ')', ',', ';']))
            .filter(|v| *v == "FILE" || *v == "-" || v.ends_with(".json") || v.ends_with('/'))
            .map(str::to_string);
        out.push((f, value));
    }
    out
}

/// The flags of `s` written with a file-like value.
fn valued(s: &str) -> Vec<(String, String)> {
    flag_values(s)
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .collect()
}

/// Whether `flag` takes a value in `help` (`--out <OUT>`).
fn takes_value(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        l.split(", ")
            .any(|part| part.trim_start().starts_with(&format!("{flag} <")))
    })
}

#[test]
fn documented_commands_and_flags_exist() {
    let all = all_help();
    let mut bad = Vec::new();
    let mut seen = 0;
    for path in doc_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for m in mentions(&name, &text) {
            seen += 1;
            // The longest command path the words name.
            let mut cmd: Vec<String> = Vec::new();
            for w in &m.words {
                let mut next = cmd.clone();
                next.push(w.clone());
                if all.contains_key(&next) {
                    cmd = next;
                } else {
                    break;
                }
            }
            if cmd.is_empty() {
                bad.push(format!("{}: `residue {}` is no command", m.at, m.words[0]));
                continue;
            }
            let help = &all[&cmd];
            // A command with subcommands needs one of them.
            if !commands(help).is_empty() && m.flags.iter().any(|f| f != "--help") {
                bad.push(format!(
                    "{}: `residue {}` needs a subcommand",
                    m.at,
                    cmd.join(" ")
                ));
                continue;
            }
            for f in &m.flags {
                let known = help
                    .split(|c: char| {
                        c.is_whitespace() || c == ',' || c == '=' || c == '[' || c == '<'
                    })
                    .any(|w| w == f);
                if !known && f != "--help" {
                    bad.push(format!(
                        "{}: `residue {}` has no flag {f}",
                        m.at,
                        cmd.join(" ")
                    ));
                }
            }
            for (f, v) in &m.valued {
                if !takes_value(help, f) && help.contains(f.as_str()) {
                    bad.push(format!(
                        "{}: `residue {}` {f} takes no value, written with `{v}`",
                        m.at,
                        cmd.join(" ")
                    ));
                }
            }
        }
    }
    assert!(seen > 50, "found only {seen} documented invocations");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
