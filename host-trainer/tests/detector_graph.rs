//! The face detector's graph as host-trainer reads it from the committed YuNet-s ONNX: its
//! layers, every tensor of the plain `f32` run against tract on the ONNX file itself (the gray
//! frame given as three equal colour channels), and a face found where it is.

use host_trainer::detector::float::{self, Map};
use host_trainer::detector::graph::{Graph, HeadKind, Op};
use tract_onnx::prelude::*;

const SIDE: usize = 320;

fn onnx_path() -> std::path::PathBuf {
    fer_test_support::models_dir().join("face_yunet_s.onnx")
}

/// A real face filling most of a 320x320 gray frame: the first FER-2013 test image, scaled up
/// (bilinear) to 224 px and put at (64, 48) on a mid-gray background.
fn frame() -> Vec<u8> {
    let (path, _) = &fer_test_support::first_images("test", 1)[0];
    let face = image::open(path).expect("FER-2013 image").to_luma8();
    let big = image::imageops::resize(&face, 224, 224, image::imageops::FilterType::Triangle);
    let mut frame = vec![128u8; SIDE * SIDE];
    for (x, y, p) in big.enumerate_pixels() {
        frame[(y as usize + 48) * SIDE + x as usize + 64] = p.0[0];
    }
    frame
}

#[test]
fn the_graph_has_yunets_layers_with_the_colour_channels_folded() {
    let g = Graph::from_onnx_file(&onnx_path()).expect("reads the ONNX");
    // 53,104 convolution weights and biases in the file; the stem's 16x3x9 weights become 16x9.
    assert_eq!(g.parameter_count(), 53_104 - 16 * 2 * 9);
    let count = |f: fn(&Op) -> bool| g.nodes.iter().filter(|n| f(&n.op)).count();
    assert_eq!(count(|o| matches!(o, Op::Stem { .. })), 1);
    assert_eq!(count(|o| matches!(o, Op::Pointwise { .. })), 26);
    assert_eq!(count(|o| matches!(o, Op::Depthwise { .. })), 26);
    assert_eq!(count(|o| matches!(o, Op::MaxPool2)), 4);
    assert_eq!(count(|o| matches!(o, Op::Upsample2)), 2);
    assert_eq!(count(|o| matches!(o, Op::Add)), 2);
    let relus = g
        .nodes
        .iter()
        .filter(|n| match &n.op {
            Op::Stem { relu, .. } | Op::Pointwise { relu, .. } | Op::Depthwise { relu, .. } => {
                *relu
            }
            _ => false,
        })
        .count();
    assert_eq!(relus, 15);
    assert_eq!(g.heads.len(), 12);
    assert_eq!(g.max_stride(), 32);
    for (h, stride) in g.heads.chunks(4).zip([8, 16, 32]) {
        assert!(h.iter().all(|h| h.stride == stride));
        let kinds: Vec<HeadKind> = h.iter().map(|h| h.kind).collect();
        assert_eq!(
            kinds,
            [
                HeadKind::Class,
                HeadKind::Objectness,
                HeadKind::Box,
                HeadKind::Landmarks
            ]
        );
    }
}

#[test]
fn every_float_tensor_matches_tract_on_the_onnx_file() {
    let g = Graph::from_onnx_file(&onnx_path()).expect("reads the ONNX");
    let pixels = frame();
    let ours = float::run(&g, &pixels, SIDE, SIDE).expect("runs");

    // tract on the file as published: three equal colour channels, every tensor as an output.
    let mut model = tract_onnx::onnx()
        .model_for_path(onnx_path())
        .expect("tract reads the ONNX");
    let names: Vec<&str> = g.names[1..].iter().map(String::as_str).collect();
    model.select_outputs_by_name(&names).expect("outputs");
    let plan = model
        .into_optimized()
        .expect("optimizes")
        .into_runnable()
        .expect("runnable");
    let rgb: Vec<f32> = (0..3)
        .flat_map(|_| pixels.iter().map(|&p| f32::from(p)))
        .collect();
    let input = tract_ndarray::Array4::from_shape_vec((1, 3, SIDE, SIDE), rgb).expect("shape");
    let out = plan
        .run(tvec!(Tensor::from(input).into()))
        .expect("tract runs");
    assert_eq!(out.len(), names.len());
    for (k, (t, name)) in out.iter().zip(&names).enumerate() {
        let theirs = t.to_plain_array_view::<f32>().expect("f32");
        let m: &Map = &ours[k + 1];
        assert_eq!(theirs.shape(), &[1, m.c, m.h, m.w], "tensor {name}");
        let scale = theirs.iter().fold(1e-6f32, |a, v| a.max(v.abs()));
        let mut worst = 0f32;
        for c in 0..m.c {
            for y in 0..m.h {
                for x in 0..m.w {
                    let d = (theirs[[0, c, y, x]] - m.data[(y * m.w + x) * m.c + c]).abs();
                    worst = worst.max(d);
                }
            }
        }
        assert!(
            worst <= 1e-4 * scale,
            "tensor {name} ({}x{}x{}): largest difference {worst} against values up to {scale}",
            m.h,
            m.w,
            m.c
        );
    }
}

#[test]
fn the_float_detector_finds_the_face_where_it_is() {
    let g = Graph::from_onnx_file(&onnx_path()).expect("reads the ONNX");
    let maps = float::run(&g, &frame(), SIDE, SIDE).expect("runs");
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    // The best cell over all strides: score = sigmoid(cls) · sigmoid(obj), box decoded as YuNet.
    let mut best = (0f32, [0f32; 4]);
    for h in g.heads.chunks(4) {
        let (cls, obj, bx) = (&maps[h[0].tensor], &maps[h[1].tensor], &maps[h[2].tensor]);
        let s = h[0].stride as f32;
        for y in 0..cls.h {
            for x in 0..cls.w {
                let i = y * cls.w + x;
                let score = sigmoid(cls.data[i]) * sigmoid(obj.data[i]);
                if score > best.0 {
                    let b = &bx.data[4 * i..4 * i + 4];
                    let (cx, cy) = ((x as f32 + b[0]) * s, (y as f32 + b[1]) * s);
                    let (w, hh) = (b[2].exp() * s, b[3].exp() * s);
                    best = (score, [cx - w / 2.0, cy - hh / 2.0, w, hh]);
                }
            }
        }
    }
    let (score, [x, y, w, h]) = best;
    assert!(score > 0.5, "best score {score}");
    // The face is the 224-px square at (64, 48); a detector's box is tighter than FER's crop.
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    assert!(
        (cx - 176.0).abs() < 40.0 && (cy - 160.0).abs() < 50.0 && w > 100.0 && w < 260.0,
        "box {x:.0},{y:.0} {w:.0}x{h:.0} (score {score:.2})"
    );
}

#[test]
fn a_damaged_or_unexpected_graph_is_refused_with_the_node_and_what_was_expected() {
    use host_trainer::onnx::proto::ModelProto;
    use prost::Message;
    let bytes = std::fs::read(onnx_path()).expect("ONNX");
    let dir = tempfile::tempdir().expect("temp");
    let err = |bytes: &[u8]| {
        let p = dir.path().join("detector.onnx");
        std::fs::write(&p, bytes).expect("write");
        format!("{:#}", Graph::from_onnx_file(&p).expect_err("refused"))
    };
    let e = err(&bytes[..bytes.len() / 2]);
    assert!(
        e.contains("detector.onnx") && e.contains("not an ONNX model"),
        "{e}"
    );

    let edited = |f: &dyn Fn(&mut ModelProto)| {
        let mut m = ModelProto::decode(bytes.as_slice()).expect("decodes");
        f(&mut m);
        err(&m.encode_to_vec())
    };
    let e = edited(&|m| m.graph.as_mut().unwrap().node[4].op_type = "Sigmoid".into());
    assert!(
        e.contains("Sigmoid -> \"188\"") && e.contains("not supported"),
        "{e}"
    );
    let e = edited(&|m| {
        let n = &mut m.graph.as_mut().unwrap().node[5];
        n.attribute
            .iter_mut()
            .find(|a| a.name == "strides")
            .unwrap()
            .ints = vec![1, 1];
    });
    assert!(
        e.contains("MaxPool -> \"189\"") && e.contains("2x2 max pool with stride 2"),
        "{e}"
    );
    let e = edited(&|m| {
        m.graph.as_mut().unwrap().initializer[0]
            .raw_data
            .truncate(10)
    });
    assert!(e.contains("holds 2 values"), "{e}");
    let e = edited(&|m| {
        m.graph
            .as_mut()
            .unwrap()
            .output
            .retain(|o| o.name != "kps_32")
    });
    assert!(e.contains("\"kps_32\" is not a graph output"), "{e}");
}
