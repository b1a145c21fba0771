use onnx_ir::{Message, ModelProto};
fn main() {
    for p in std::env::args().skip(1) {
        let b = std::fs::read(&p).unwrap();
        println!("=== {p}");
        let m = match ModelProto::parse_from_bytes(&b) {
            Ok(m) => m,
            Err(e) => {
                println!("ERR {e}");
                continue;
            }
        };
        println!(
            "opset {:?} meta {:?}",
            m.opset_import.iter().map(|o| o.version).collect::<Vec<_>>(),
            m.metadata_props.iter().map(|e| &e.key).collect::<Vec<_>>()
        );
        let g = &m.graph;
        for i in &g.input {
            println!("input {} {:?}", i.name, i.type_);
        }
        for o in &g.output {
            println!("output {}", o.name);
        }
        for t in &g.initializer {
            println!(
                "init {} {:?} dt{} raw{} ext{:?} f{}",
                t.name,
                t.dims,
                t.data_type,
                t.raw_data.len(),
                t.external_data
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect::<Vec<_>>(),
                t.float_data.len()
            );
        }
        for n in &g.node {
            println!(
                "node {:?} {} {:?} -> {:?} attrs {:?}",
                n.name,
                n.op_type,
                n.input,
                n.output,
                n.attribute
                    .iter()
                    .map(|a| format!(
                        "{}={:?}{:?}{:?}{:?}",
                        a.name,
                        a.i,
                        a.ints,
                        a.f,
                        a.t.as_ref()
                            .map(|t| (t.dims.clone(), t.data_type, t.raw_data.len()))
                    ))
                    .collect::<Vec<_>>()
            );
        }
    }
}
