//! The detector graph in plain `f32`: every tensor of one gray frame, HWC. The reference the
//! int8 detector is calibrated on and compared with; checked against tract on the ONNX file.

use anyhow::{ensure, Result};

use super::graph::{Graph, Op};

/// One tensor: `h × w × c` values, HWC.
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Map {
    fn zeros(h: usize, w: usize, c: usize) -> Map {
        Map {
            h,
            w,
            c,
            data: vec![0.0; h * w * c],
        }
    }

    /// Value at `(y, x, ch)`, 0 outside the map (the convolutions' zero padding).
    #[inline]
    pub fn at(&self, y: isize, x: isize, ch: usize) -> f32 {
        if y < 0 || x < 0 || y as usize >= self.h || x as usize >= self.w {
            0.0
        } else {
            self.data[(y as usize * self.w + x as usize) * self.c + ch]
        }
    }
}

/// Runs `graph` on a gray frame (`pixels` 0-255, `h × w`, row by row): every tensor, indexed as
/// the graph's. Both sides must be multiples of [`Graph::max_stride`].
pub fn run(graph: &Graph, pixels: &[u8], h: usize, w: usize) -> Result<Vec<Map>> {
    let s = graph.max_stride();
    ensure!(
        h > 0 && w > 0 && h.is_multiple_of(s) && w.is_multiple_of(s) && pixels.len() == h * w,
        "frame {w}x{h} ({} pixels): both sides must be multiples of {s}",
        pixels.len()
    );
    let mut maps: Vec<Option<Map>> = vec![None; graph.channels.len()];
    maps[0] = Some(Map {
        h,
        w,
        c: 1,
        data: pixels.iter().map(|&p| f32::from(p)).collect(),
    });
    for node in &graph.nodes {
        let input = |k: usize| {
            maps[node.inputs[k]]
                .as_ref()
                .expect("inputs computed first")
        };
        let out = match &node.op {
            Op::Stem {
                cout,
                weights,
                bias,
                relu,
            } => stem(input(0), *cout, weights, bias, *relu),
            Op::Pointwise {
                cin,
                cout,
                weights,
                bias,
                relu,
            } => pointwise(input(0), *cin, *cout, weights, bias, *relu),
            Op::Depthwise {
                weights,
                bias,
                relu,
                ..
            } => depthwise(input(0), weights, bias, *relu),
            Op::MaxPool2 => max_pool2(input(0)),
            Op::Upsample2 => upsample2(input(0)),
            Op::Add => {
                let (a, b) = (input(0), input(1));
                ensure!(
                    (a.h, a.w, a.c) == (b.h, b.w, b.c),
                    "add of {}x{}x{} and {}x{}x{}",
                    a.h,
                    a.w,
                    a.c,
                    b.h,
                    b.w,
                    b.c
                );
                let data = a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect();
                Map { data, ..*a }
            }
        };
        maps[node.output] = Some(out);
    }
    Ok(maps
        .into_iter()
        .map(|m| m.expect("every tensor computed"))
        .collect())
}

fn activate(v: f32, relu: bool) -> f32 {
    if relu {
        v.max(0.0)
    } else {
        v
    }
}

fn stem(x: &Map, cout: usize, weights: &[f32], bias: &[f32], relu: bool) -> Map {
    let (oh, ow) = ((x.h - 1) / 2 + 1, (x.w - 1) / 2 + 1);
    let mut out = Map::zeros(oh, ow, cout);
    for oy in 0..oh {
        for ox in 0..ow {
            for co in 0..cout {
                let mut acc = bias[co];
                for t in 0..9 {
                    let (y, xx) = ((2 * oy + t / 3) as isize - 1, (2 * ox + t % 3) as isize - 1);
                    acc += weights[co * 9 + t] * x.at(y, xx, 0);
                }
                out.data[(oy * ow + ox) * cout + co] = activate(acc, relu);
            }
        }
    }
    out
}

fn pointwise(x: &Map, cin: usize, cout: usize, weights: &[f32], bias: &[f32], relu: bool) -> Map {
    let mut out = Map::zeros(x.h, x.w, cout);
    for (px, o) in x
        .data
        .chunks_exact(cin)
        .zip(out.data.chunks_exact_mut(cout))
    {
        for (co, v) in o.iter_mut().enumerate() {
            let row = &weights[co * cin..][..cin];
            *v = activate(
                bias[co] + row.iter().zip(px).map(|(w, a)| w * a).sum::<f32>(),
                relu,
            );
        }
    }
    out
}

fn depthwise(x: &Map, weights: &[f32], bias: &[f32], relu: bool) -> Map {
    let mut out = Map::zeros(x.h, x.w, x.c);
    for y in 0..x.h {
        for xx in 0..x.w {
            for c in 0..x.c {
                let mut acc = bias[c];
                for t in 0..9 {
                    let (iy, ix) = ((y + t / 3) as isize - 1, (xx + t % 3) as isize - 1);
                    acc += weights[c * 9 + t] * x.at(iy, ix, c);
                }
                out.data[(y * x.w + xx) * x.c + c] = activate(acc, relu);
            }
        }
    }
    out
}

fn max_pool2(x: &Map) -> Map {
    let (oh, ow) = (x.h / 2, x.w / 2);
    let mut out = Map::zeros(oh, ow, x.c);
    for oy in 0..oh {
        for ox in 0..ow {
            for c in 0..x.c {
                let v = (0..4)
                    .map(|q| x.at((2 * oy + q / 2) as isize, (2 * ox + q % 2) as isize, c))
                    .fold(f32::NEG_INFINITY, f32::max);
                out.data[(oy * ow + ox) * x.c + c] = v;
            }
        }
    }
    out
}

fn upsample2(x: &Map) -> Map {
    let (oh, ow) = (2 * x.h, 2 * x.w);
    let mut out = Map::zeros(oh, ow, x.c);
    for y in 0..oh {
        for xx in 0..ow {
            let src = ((y / 2) * x.w + xx / 2) * x.c;
            out.data[(y * ow + xx) * x.c..][..x.c].copy_from_slice(&x.data[src..src + x.c]);
        }
    }
    out
}

/// The faces of one frame from the float head maps, decoded as YuNet does (score
/// `sigmoid(class) · sigmoid(objectness)`, box centre `(cell + offset) · stride`, size
/// `exp(log size) · stride`, landmarks `(cell + offset) · stride`), rounded to whole pixels, then
/// the same non-maximum suppression as the int8 detector's.
pub fn decode(
    graph: &Graph,
    maps: &[Map],
    p: &edge_runtime::detect::cnn::decode::DecodeParams,
) -> Vec<edge_runtime::detect::cnn::decode::Detection> {
    use edge_runtime::detect::cnn::decode::{suppress, Detection, ONE};
    let sigmoid = |v: f32| 1.0 / (1.0 + (-f64::from(v)).exp());
    let px = |v: f64| v.round() as i32;
    let mut faces = Vec::new();
    for h in graph.heads.chunks(4) {
        let (cls, obj, bx, kps) = (
            &maps[h[0].tensor],
            &maps[h[1].tensor],
            &maps[h[2].tensor],
            &maps[h[3].tensor],
        );
        let s = h[0].stride as f64;
        for y in 0..cls.h {
            for x in 0..cls.w {
                let i = y * cls.w + x;
                let score = sigmoid(cls.data[i]) * sigmoid(obj.data[i]);
                let score_q16 = (score * f64::from(ONE)).round() as u32;
                if score_q16 < p.min_score {
                    continue;
                }
                let b = &bx.data[4 * i..4 * i + 4];
                let (cx, cy) = (
                    (x as f64 + f64::from(b[0])) * s,
                    (y as f64 + f64::from(b[1])) * s,
                );
                let (w, hh) = (f64::from(b[2]).exp() * s, f64::from(b[3]).exp() * s);
                let k = &kps.data[10 * i..10 * i + 10];
                faces.push(Detection {
                    x: px(cx - w / 2.0),
                    y: px(cy - hh / 2.0),
                    w: px(w),
                    h: px(hh),
                    score: score_q16,
                    landmarks: core::array::from_fn(|j| {
                        [
                            px((x as f64 + f64::from(k[2 * j])) * s),
                            px((y as f64 + f64::from(k[2 * j + 1])) * s),
                        ]
                    }),
                });
            }
        }
    }
    let kept = suppress(&mut faces, p.nms_percent);
    faces.truncate(kept);
    faces
}
