use compiler::nets::*;
use compiler::placement::*;
use compiler::*;
fn main() {
    for (l, d) in [(12u32, 3u32), (10, 2), (14, 3), (9, 3), (11, 3), (13, 3)] {
        let spec = BodySpec::resnet20(d);
        let b = LevelBudget::fresh(l);
        let cnt = |g: &LevelGraph| {
            let o = optimal(g, b, &Objective::count(g)).unwrap();
            let gr = greedy(g, b, &Objective::count(g)).unwrap();
            format!("{}(greedy {})", o.cost, gr.cost)
        };
        print!(
            "L={l} d={d}: resnet {} dirac {}",
            cnt(&resnet(spec)),
            cnt(&dirac(spec))
        );
        for src in [SourceAt::StageInput, SourceAt::FirstBlockOutput] {
            for add in [AddAt::BeforeAct, AddAt::AfterAct] {
                for k in [1usize, 2, 3] {
                    let g = dirac_shared(
                        spec,
                        SharedSpec {
                            source: src,
                            add,
                            adds_per_stage: k,
                        },
                    );
                    print!(" | {src:?}/{add:?}/{k}: {}", cnt(&g));
                }
            }
        }
        println!();
    }
}
