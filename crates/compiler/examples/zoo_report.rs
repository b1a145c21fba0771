//! Prints the analyze report of the zoo's ResNet-20 family.
use compiler::params::ParamSet;
use compiler::plan::{CompileOptions, compile};
use nn::zoo::{ZooConfig, build_random};

fn main() {
    let sets = ParamSet::defaults();
    let auto = std::env::args().any(|a| a == "auto");
    for name in ["resnet20", "dirac20", "dirac-shared20"] {
        let cfg = ZooConfig::from_name(name, 3, [32, 32], 10).unwrap();
        let g = build_random(&cfg, 1).unwrap();
        let t = std::time::Instant::now();
        let mut opts = CompileOptions::default();
        if auto {
            opts.params = None;
        }
        let (_plan, rep) = compile(&g, &sets, &opts).unwrap();
        println!("{}", rep.to_text());
        println!("compile time {:?}\n", t.elapsed());
    }
}
