//! A small face detector's float graph read from ONNX (YuNet's layout: a 3x3 stride-2 stem,
//! pointwise and depthwise convolutions with ReLU, 2x2 max pools, nearest 2x upsampling, adds,
//! and heads of per-cell box, landmark and score maps at several strides), with the stem's three
//! colour channels folded into one for gray frames. Every node the importer does not know, or
//! knows in another form, is an error naming the node and what was expected.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use prost::Message;

use crate::onnx::proto as pb;

/// One layer of the graph; tensors are HWC `f32`, weights as ONNX stores them after folding.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// 3x3 convolution, stride 2, padding 1, over the one-channel gray input: `weights` are
    /// `[cout][3][3]` (the colour channels summed: exact for a gray image given as three equal
    /// channels).
    Stem {
        cout: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    /// 1x1 convolution: `weights` `[cout][cin]`.
    Pointwise {
        cin: usize,
        cout: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    /// 3x3 depthwise convolution, stride 1, padding 1: `weights` `[channels][3][3]`.
    Depthwise {
        channels: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    /// 2x2 max pool, stride 2 (odd sizes drop the last row or column, as ONNX's floor mode).
    MaxPool2,
    /// Nearest-neighbour 2x upsampling: output `(y, x)` is input `(y / 2, x / 2)`.
    Upsample2,
    /// Element-wise sum of two tensors of one shape.
    Add,
}

/// A layer and the tensors it reads and writes (tensor 0 is the gray input).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<usize>,
    pub output: usize,
}

/// What a head map holds per cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeadKind {
    /// Face class logit (a sigmoid gives its probability).
    Class,
    /// Objectness logit; a cell's score is `sigmoid(class) · sigmoid(objectness)`.
    Objectness,
    /// Box: centre offset `(dx, dy)` in strides from the cell's corner, `(log w, log h)` in strides.
    Box,
    /// Five landmarks `(x, y)` in strides from the cell's corner: right eye, left eye, nose tip,
    /// right and left mouth corners (the subject's right and left).
    Landmarks,
}

impl HeadKind {
    /// Channels of the map.
    pub fn channels(self) -> usize {
        match self {
            HeadKind::Class | HeadKind::Objectness => 1,
            HeadKind::Box => 4,
            HeadKind::Landmarks => 10,
        }
    }
}

/// One output map of the detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub kind: HeadKind,
    /// Input pixels per cell.
    pub stride: usize,
    /// The tensor holding the map (its values before the ONNX graph's sigmoid).
    pub tensor: usize,
}

/// The imported graph: nodes in an order that computes every input before it is read.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Channels of every tensor (tensor 0, the gray input: 1).
    pub channels: Vec<usize>,
    /// The ONNX name of every tensor (tensor 0: the graph's input).
    pub names: Vec<String>,
    /// Sorted by stride, then kind.
    pub heads: Vec<Head>,
}

impl Graph {
    /// Reads the ONNX file at `path`.
    pub fn from_onnx_file(path: &Path) -> Result<Graph> {
        let bytes = fer_dataset::safe_read::read(path, fer_dataset::safe_read::Kind::Onnx)?;
        let proto = pb::ModelProto::decode(bytes.as_slice())
            .map_err(|e| anyhow!("{}: not an ONNX model ({e})", path.display()))?;
        Graph::from_onnx(&proto).with_context(|| format!("{}", path.display()))
    }

    /// Reads a parsed ONNX model.
    pub fn from_onnx(model: &pb::ModelProto) -> Result<Graph> {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| anyhow!("the model has no graph"))?;
        Importer::new(graph)?.run()
    }

    /// The largest input stride of the heads: frame sides must be multiples of it.
    pub fn max_stride(&self) -> usize {
        self.heads.iter().map(|h| h.stride).max().unwrap_or(1)
    }

    /// Parameters (weights and biases) after folding.
    pub fn parameter_count(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Stem { weights, bias, .. }
                | Op::Pointwise { weights, bias, .. }
                | Op::Depthwise { weights, bias, .. } => weights.len() + bias.len(),
                _ => 0,
            })
            .sum()
    }
}

/// The constant tensors of the graph.
struct Constants<'a>(HashMap<&'a str, &'a pb::TensorProto>);

impl Constants<'_> {
    /// A float constant's shape and values.
    fn floats(&self, name: &str, node: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.0.get(name).ok_or_else(|| {
            anyhow!("node {node}: input {name:?} must be a constant (initializer)")
        })?;
        ensure!(
            t.data_type == pb::FLOAT,
            "node {node}: constant {name:?} must be float32 (type 1), is type {}",
            t.data_type
        );
        ensure!(
            t.data_location == 0,
            "node {node}: constant {name:?} is stored in another file; only self-contained models are read"
        );
        let shape: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| {
                usize::try_from(d)
                    .map_err(|_| anyhow!("node {node}: constant {name:?} has dimension {d}"))
            })
            .collect::<Result<_>>()?;
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let values: Vec<f32> = if t.raw_data.is_empty() {
            t.float_data.clone()
        } else {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        ensure!(
            n == Some(values.len())
                && (t.raw_data.is_empty() || t.raw_data.len() == 4 * values.len()),
            "node {node}: constant {name:?} of shape {shape:?} holds {} values",
            values.len()
        );
        Ok((shape, values))
    }
}

struct Importer<'a> {
    graph: &'a pb::GraphProto,
    constants: Constants<'a>,
    /// ONNX tensor name -> our tensor id.
    ids: HashMap<String, usize>,
    /// How many nodes read each ONNX tensor.
    readers: HashMap<&'a str, usize>,
    out: Graph,
}

fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn ints(node: &pb::NodeProto, name: &str) -> Vec<i64> {
    attr(node, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn text(node: &pb::NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn node_name(node: &pb::NodeProto) -> String {
    let out = node.output.first().map(String::as_str).unwrap_or("?");
    format!("{} -> {out:?}", node.op_type)
}

impl<'a> Importer<'a> {
    fn new(graph: &'a pb::GraphProto) -> Result<Importer<'a>> {
        let constants: HashMap<&str, &pb::TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let inputs: Vec<&pb::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !constants.contains_key(i.name.as_str()))
            .collect();
        ensure!(
            inputs.len() == 1,
            "the graph must have one image input, has {}",
            inputs.len()
        );
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for n in &graph.node {
            for i in &n.input {
                *readers.entry(i.as_str()).or_default() += 1;
            }
        }
        let mut ids = HashMap::new();
        ids.insert(inputs[0].name.clone(), 0);
        Ok(Importer {
            graph,
            constants: Constants(constants),
            ids,
            readers,
            out: Graph {
                nodes: Vec::new(),
                channels: vec![1],
                names: vec![inputs[0].name.clone()],
                heads: Vec::new(),
            },
        })
    }

    fn tensor(&self, name: &str, node: &str) -> Result<usize> {
        self.ids.get(name).copied().ok_or_else(|| {
            anyhow!(
                "node {node}: input {name:?} is not computed before it (nodes must be in order)"
            )
        })
    }

    fn add_tensor(&mut self, name: &str, channels: usize) -> usize {
        let id = self.out.channels.len();
        self.out.channels.push(channels);
        self.out.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    fn run(mut self) -> Result<Graph> {
        let nodes = &self.graph.node;
        let mut i = 0;
        while i < nodes.len() {
            let n = &nodes[i];
            let name = node_name(n);
            match n.op_type.as_str() {
                "Conv" => {
                    // A ReLU right after, reading only this conv, is fused into it.
                    let relu = nodes.get(i + 1).is_some_and(|r| {
                        r.op_type == "Relu"
                            && r.input.first() == n.output.first()
                            && self.readers.get(n.output[0].as_str()) == Some(&1)
                    });
                    let output = if relu { &nodes[i + 1].output[0] } else { &n.output[0] };
                    self.conv(n, &name, relu, output)?;
                    i += 1 + usize::from(relu);
                    continue;
                }
                "MaxPool" => {
                    ensure!(
                        ints(n, "kernel_shape") == [2, 2]
                            && ints(n, "strides") == [2, 2]
                            && ints(n, "pads").iter().all(|&p| p == 0)
                            && attr(n, "ceil_mode").is_none_or(|a| a.i == 0),
                        "node {name}: expected a 2x2 max pool with stride 2, no padding, floor mode"
                    );
                    self.simple(n, &name, Op::MaxPool2)?;
                }
                "Resize" => {
                    ensure!(
                        text(n, "mode").as_deref() == Some("nearest")
                            && text(n, "coordinate_transformation_mode").as_deref() == Some("asymmetric")
                            && text(n, "nearest_mode").as_deref() == Some("floor"),
                        "node {name}: expected nearest resizing with asymmetric coordinates and floor rounding"
                    );
                    let scales = n
                        .input
                        .get(2)
                        .ok_or_else(|| anyhow!("node {name}: expected scales as its third input"))?;
                    let (_, s) = self.constants.floats(scales, &name)?;
                    ensure!(
                        s == [1.0, 1.0, 2.0, 2.0],
                        "node {name}: expected scales [1, 1, 2, 2], found {s:?}"
                    );
                    self.simple(n, &name, Op::Upsample2)?;
                }
                "Add" => {
                    let a = self.tensor(&n.input[0], &name)?;
                    let b = self.tensor(
                        n.input.get(1).ok_or_else(|| anyhow!("node {name}: expected two inputs"))?,
                        &name,
                    )?;
                    ensure!(
                        self.out.channels[a] == self.out.channels[b],
                        "node {name}: inputs of {} and {} channels",
                        self.out.channels[a],
                        self.out.channels[b]
                    );
                    let c = self.out.channels[a];
                    let output = self.add_tensor(&n.output[0], c);
                    self.out.nodes.push(Node { op: Op::Add, inputs: vec![a, b], output });
                }
                "Transpose" => {
                    i = self.head(i)?;
                    continue;
                }
                other => bail!("node {name}: operator {other} is not supported (Conv, Relu after a Conv, MaxPool, Resize, Add, and Transpose/Reshape/Sigmoid at the outputs)"),
            }
            i += 1;
        }
        self.finish()
    }

    fn simple(&mut self, n: &pb::NodeProto, name: &str, op: Op) -> Result<()> {
        let input = self.tensor(&n.input[0], name)?;
        let c = self.out.channels[input];
        let output = self.add_tensor(&n.output[0], c);
        self.out.nodes.push(Node {
            op,
            inputs: vec![input],
            output,
        });
        Ok(())
    }

    fn conv(&mut self, n: &pb::NodeProto, name: &str, relu: bool, output: &str) -> Result<()> {
        let input = self.tensor(&n.input[0], name)?;
        let cin = self.out.channels[input];
        let wname = n
            .input
            .get(1)
            .ok_or_else(|| anyhow!("node {name}: expected weights"))?;
        let (shape, weights) = self.constants.floats(wname, name)?;
        ensure!(
            shape.len() == 4,
            "node {name}: weights of shape {shape:?}, expected 4 dimensions"
        );
        let (cout, wcin, kh, kw) = (shape[0], shape[1], shape[2], shape[3]);
        let bias = match n.input.get(2) {
            Some(b) => {
                let (bshape, bias) = self.constants.floats(b, name)?;
                ensure!(
                    bshape == [cout],
                    "node {name}: bias of shape {bshape:?}, expected [{cout}]"
                );
                bias
            }
            None => vec![0.0; cout],
        };
        let group = attr(n, "group").map_or(1, |a| a.i) as usize;
        let strides = ints(n, "strides");
        let pads = ints(n, "pads");
        let dil = ints(n, "dilations");
        ensure!(
            dil.is_empty() || dil == [1, 1],
            "node {name}: dilations {dil:?}, expected [1, 1]"
        );
        let stride = strides.first().copied().unwrap_or(1);
        ensure!(
            strides.is_empty() || strides == [stride, stride],
            "node {name}: strides {strides:?}, expected equal ones"
        );
        let op = match (kh, kw) {
            (1, 1) => {
                ensure!(
                    group == 1 && wcin == cin && stride == 1 && pads.iter().all(|&p| p == 0),
                    "node {name}: a 1x1 convolution must read all {cin} channels with stride 1 and no padding"
                );
                Op::Pointwise {
                    cin,
                    cout,
                    weights,
                    bias,
                    relu,
                }
            }
            (3, 3) => {
                ensure!(
                    pads == [1, 1, 1, 1],
                    "node {name}: a 3x3 convolution must have padding 1 on every side, has {pads:?}"
                );
                if input == 0 {
                    ensure!(
                        stride == 2 && group == 1 && (wcin == 3 || wcin == 1),
                        "node {name}: the first convolution must be 3x3, stride 2, over 1 or 3 channels"
                    );
                    // Gray replicated to three channels: the three kernels add up.
                    let folded = (0..cout * 9)
                        .map(|i| {
                            let (co, t) = (i / 9, i % 9);
                            (0..wcin).map(|c| weights[(co * wcin + c) * 9 + t]).sum()
                        })
                        .collect();
                    Op::Stem {
                        cout,
                        weights: folded,
                        bias,
                        relu,
                    }
                } else {
                    ensure!(
                        stride == 1 && wcin == 1 && group == cin && cout == cin,
                        "node {name}: a 3x3 convolution after the first must be depthwise (group = channels = {cin}) with stride 1"
                    );
                    Op::Depthwise {
                        channels: cout,
                        weights,
                        bias,
                        relu,
                    }
                }
            }
            _ => bail!("node {name}: kernel {kh}x{kw}, expected 1x1 or 3x3"),
        };
        let out = self.add_tensor(output, cout);
        self.out.nodes.push(Node {
            op,
            inputs: vec![input],
            output: out,
        });
        Ok(())
    }

    /// `Transpose(0, 2, 3, 1) -> Reshape -> [Sigmoid]` ending in a graph output named
    /// `<kind>_<stride>`: the head map is the transposed tensor. Returns the next node's index.
    fn head(&mut self, i: usize) -> Result<usize> {
        let nodes = &self.graph.node;
        let t = &nodes[i];
        let name = node_name(t);
        ensure!(
            ints(t, "perm") == [0, 2, 3, 1],
            "node {name}: expected perm [0, 2, 3, 1] (channels last)"
        );
        let tensor = self.tensor(&t.input[0], &name)?;
        let mut j = i + 1;
        let mut last = &t.output[0];
        for op in ["Reshape", "Sigmoid"] {
            if let Some(n) = nodes
                .get(j)
                .filter(|n| n.op_type == op && n.input.first() == Some(last))
            {
                last = &n.output[0];
                j += 1;
            }
        }
        let (kind, stride) = last
            .split_once('_')
            .and_then(|(k, s)| Some((k, s.parse::<usize>().ok()?)))
            .ok_or_else(|| anyhow!("node {name}: ends in {last:?}, expected a graph output named <cls|obj|bbox|kps>_<stride>"))?;
        let kind = match kind {
            "cls" => HeadKind::Class,
            "obj" => HeadKind::Objectness,
            "bbox" => HeadKind::Box,
            "kps" => HeadKind::Landmarks,
            other => bail!("output {last:?}: head {other:?} is not one of cls, obj, bbox, kps"),
        };
        ensure!(
            self.graph.output.iter().any(|o| &o.name == last),
            "node {name}: {last:?} is not a graph output"
        );
        ensure!(
            self.out.channels[tensor] == kind.channels(),
            "output {last:?}: {} channels, expected {}",
            self.out.channels[tensor],
            kind.channels()
        );
        self.out.heads.push(Head {
            kind,
            stride,
            tensor,
        });
        Ok(j)
    }

    fn finish(mut self) -> Result<Graph> {
        self.out.heads.sort_by_key(|h| (h.stride, h.kind));
        let strides: Vec<usize> = self.out.heads.iter().map(|h| h.stride).collect();
        for s in strides.iter() {
            let kinds: Vec<HeadKind> = self
                .out
                .heads
                .iter()
                .filter(|h| h.stride == *s)
                .map(|h| h.kind)
                .collect();
            ensure!(
                kinds
                    == [
                        HeadKind::Class,
                        HeadKind::Objectness,
                        HeadKind::Box,
                        HeadKind::Landmarks
                    ],
                "stride {s}: heads {kinds:?}, expected cls, obj, bbox and kps"
            );
        }
        ensure!(
            !self.out.heads.is_empty(),
            "the graph has no head outputs (cls_8, ...)"
        );
        Ok(self.out)
    }
}
