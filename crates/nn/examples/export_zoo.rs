//! Writes a randomly initialized zoo network as ONNX (and JSON).
//!
//! `cargo run -p nn --example export_zoo -- ARCH IN_CH SIZE OUT.onnx [WIDTH]`,
//! e.g. `resnet20 1 28 /tmp/r20.onnx`. Useful to try `residue eval`,
//! `residue predict` and the compiler without training.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        return Err("usage: export_zoo ARCH IN_CH SIZE OUT.onnx [WIDTH]".into());
    }
    let (c, s): (usize, usize) = (a[1].parse()?, a[2].parse()?);
    let mut cfg = nn::zoo::ZooConfig::from_name(&a[0], c, [s, s], 10)?;
    if let Some(w) = a.get(4) {
        cfg.width = w.parse()?;
    }
    let g = nn::zoo::build_random(&cfg, 1)?;
    nn::onnx::save(&g, &a[3])?;
    std::fs::write(format!("{}.json", a[3]), g.to_json())?;
    println!(
        "{}: {} nodes, {} parameters",
        a[3],
        g.nodes.len(),
        g.num_params()
    );
    Ok(())
}
