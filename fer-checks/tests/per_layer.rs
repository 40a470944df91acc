//! Rung 2 of the verification ladder: every int8 layer of edge-runtime against tract running the
//! QDQ ONNX (a float simulation of the same quantized layers), on 200+ real test images.

use edge_runtime::format::Kind;
use edge_runtime::Model;
use fer_checks::*;
use tract_onnx::prelude::*;

#[derive(Clone, Copy, Default)]
struct Diffs {
    total: usize,
    exact: usize,
    one: usize,
    worst: i32,
}

#[test]
fn int8_layers_match_the_qdq_simulation_within_one_lsb() {
    let name = "fer_cnn";
    let file = artifact(&format!("{name}.int8.bin"));
    let model = Model::from_bytes(&file).expect("valid model");
    let qdq = artifact(&format!("{name}.qdq.onnx"));
    // 240 test images spread over the split (every 13th).
    let samples: Vec<_> = test_split().into_iter().step_by(13).take(240).collect();
    assert!(samples.len() >= 200);
    let batch = 40;
    let plan = tract_plan(&qdq, batch).expect("tract runs the QDQ model");
    let layers = model.layers().len();
    let mut diffs = vec![Diffs::default(); layers];
    let mut arena = vec![0i8; model.arena_size()];
    let mut images = 0;
    for chunk in samples.chunks_exact(batch) {
        let outs = plan.run(tvec!(float_input(chunk).into())).expect("run");
        assert_eq!(outs.len(), layers, "one QDQ output per layer");
        for (b, s) in chunk.iter().enumerate() {
            images += 1;
            model
                .run_observed(&s.pixels[..], &mut arena, |i, l, ours| {
                    let theirs = outs[i].to_plain_array_view::<i8>().expect("int8 output");
                    let (h, w, c) = l.out_shape();
                    let d = &mut diffs[i];
                    for y in 0..h {
                        for x in 0..w {
                            for ch in 0..c {
                                let t = match l.kind {
                                    Kind::Conv3x3 => theirs[[b, ch, y, x]],
                                    Kind::Dense => theirs[[b, ch]],
                                };
                                let diff =
                                    (i32::from(ours[(y * w + x) * c + ch]) - i32::from(t)).abs();
                                d.total += 1;
                                d.exact += usize::from(diff == 0);
                                d.one += usize::from(diff == 1);
                                d.worst = d.worst.max(diff);
                            }
                        }
                    }
                })
                .expect("inference");
        }
    }
    println!("{images} images\nlayer     values   exact %  ±1 LSB %  >1 LSB %  max |diff|");
    for (i, d) in diffs.iter().enumerate() {
        let pct = |n: usize| 100.0 * n as f64 / d.total as f64;
        println!(
            "{i:>5} {:>10} {:>9.3} {:>9.3} {:>9.4} {:>11}",
            d.total,
            pct(d.exact),
            pct(d.one),
            pct(d.total - d.exact - d.one),
            d.worst
        );
    }
    assert!(images >= 200);
    for (i, d) in diffs.iter().enumerate() {
        let within_one = (d.exact + d.one) as f64 / d.total as f64;
        assert!(
            within_one >= 0.999,
            "layer {i}: only {:.4}% within ±1 LSB",
            100.0 * within_one
        );
        assert!(
            d.worst <= 2,
            "layer {i}: a value differs by {} LSB",
            d.worst
        );
    }
}
