//! The trained models committed under `models/` load, have the structure
//! their names promise, and the reference executor reproduces the accuracy
//! recorded for them in `models/results.json` (written by
//! `scripts/eval-zoo.sh`): on the first 500 Fashion-MNIST test images,
//! which the repository bundles (`data/fashion-mnist-sample`), always; on
//! the first 2000 when the full set is installed (an ignored test that
//! `.ci/run` runs with `-- --ignored needs_data`).

use std::path::{Path, PathBuf};

use nn::graph::Op;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Entry {
    name: String,
    file: PathBuf,
    first_2000_correct: usize,
    first_500_correct: usize,
}

fn entries() -> Vec<Entry> {
    let path = repo().join("models/results.json");
    let text = std::fs::read_to_string(&path).expect("models/results.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    v.as_array()
        .expect("a list")
        .iter()
        .map(|e| Entry {
            name: e["model"].as_str().unwrap().to_string(),
            file: repo().join(e["file"].as_str().unwrap()),
            first_2000_correct: e["first_2000_correct"].as_u64().unwrap() as usize,
            first_500_correct: e["first_500_correct"].as_u64().unwrap() as usize,
        })
        .collect()
}

/// The activations and skip adds a bundled model's name promises, or
/// `None` for a name this test does not know.
fn structure(name: &str) -> Option<(usize, usize)> {
    Some(match name {
        "resnet20" => (19, 9),
        "dirac20" => (19, 0),
        // 3 shared-source adds per stage, except in the stages whose
        // source is their first block (2 and 3): 3 + 2 + 2
        "dirac-shared20" => (19, 7),
        // depth 14: 2 adds reading the stem in stage 1, one in each of
        // stages 2 and 3 (their source is their first block)
        "dirac-shared14-w0625" => (13, 4),
        // 6 blocks, each with its skip
        "resnet14-w0625" | "resnet14-w05" => (13, 6),
        _ => return None,
    })
}

#[test]
fn committed_models_load_with_their_structure() {
    let list = entries();
    for want in ["resnet20", "dirac20", "dirac-shared20"] {
        assert!(
            list.iter().any(|e| e.name == want),
            "{want} is in models/results.json"
        );
    }
    for e in &list {
        let g = nn::onnx::load(&e.file).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert_eq!(g.input_shape, vec![1, 28, 28], "{}", e.name);
        let count = |f: fn(&Op) -> bool| g.nodes.iter().filter(|n| f(&n.op)).count();
        let adds = count(|op| matches!(op, Op::Add));
        let acts = count(|op| matches!(op, Op::PolyAct(_)));
        let (want_acts, want_adds) =
            structure(&e.name).unwrap_or_else(|| panic!("unexpected model {}", e.name));
        assert_eq!(acts, want_acts, "{}: polynomial activations", e.name);
        assert_eq!(adds, want_adds, "{}: skip adds", e.name);
        for n in &g.nodes {
            if let Op::PolyAct(p) = &n.op {
                assert_eq!(p.degree(), 2, "{}: degree 2", e.name);
                let [lo, hi] = p.range;
                assert!(lo < 0.0 && hi > 0.0 && hi.is_finite(), "{}: range", e.name);
            }
        }
    }
}

/// Each model's correct count on `test` equals the one `count` reads
/// from its entry.
fn reproduces(test: &nn::data::ImageSet, count: fn(&Entry) -> usize) {
    for e in entries() {
        let g = nn::onnx::load(&e.file).unwrap();
        let acc = nn::exec::evaluate(&g, test).unwrap();
        assert_eq!(
            acc.correct,
            count(&e),
            "{}: {} of {} correct, models/results.json records {}",
            e.name,
            acc.correct,
            test.len(),
            count(&e)
        );
    }
}

#[test]
fn committed_models_reproduce_their_accuracy_on_the_bundled_sample() {
    let dir = nn::data::DatasetKind::FashionMnist.sample_dir().unwrap();
    let test = nn::data::load_idx_split(&dir, "t10k").unwrap();
    assert_eq!(test.len(), 500);
    reproduces(&test, |e| e.first_500_correct);
}

#[test]
#[ignore = "needs the full Fashion-MNIST: apt-get install dataset-fashion-mnist"]
fn committed_models_reproduce_their_accuracy_on_2000_needs_data() {
    let dir = Path::new(nn::data::FASHION_MNIST_DIR);
    assert!(
        dir.is_dir(),
        "{} not installed: {}",
        dir.display(),
        nn::data::DatasetKind::FashionMnist.test_data_hint()
    );
    let test = nn::data::load_idx_split(dir, "t10k").unwrap().take(2000);
    reproduces(&test, |e| e.first_2000_correct);
}
