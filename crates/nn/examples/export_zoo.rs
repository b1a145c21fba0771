//! Writes a randomly initialized zoo network as ONNX (and JSON).
//!
//! `cargo run -p nn --example export_zoo -- ARCH IN_CH SIZE OUT.onnx [WIDTH]`,
//! e.g. `resnet20 1 28 /tmp/r20.onnx`. Useful to try `residue eval`,
//! `residue predict` and the compiler without training. `EXPORT_STYLE=dynamo`
//! writes the dynamo-style operator patterns (opset 18).

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
    // EXPORT_STYLE=dynamo imitates torch.onnx.export(dynamo=True) patterns.
    let style = match std::env::var("EXPORT_STYLE").as_deref() {
        Ok("dynamo") => nn::onnx::ExportStyle::Dynamo,
        _ => nn::onnx::ExportStyle::TorchScript,
    };
    let opts = nn::onnx::ExportOptions {
        style,
        poly: nn::onnx::PolyStyle::Horner,
    };
    std::fs::write(&a[3], nn::onnx::export_with(&g, opts)?)?;
    std::fs::write(format!("{}.json", a[3]), g.to_json())?;
    println!(
        "{}: {} nodes, {} parameters",
        a[3],
        g.nodes.len(),
        g.num_params()
    );
    Ok(())
}
