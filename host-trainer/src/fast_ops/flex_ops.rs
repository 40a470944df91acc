//! The network's 3x3 'same' convolution with its ReLU, 2x2 max pool and training BatchNorm as a
//! burn backend extension for the flex backend, with hand-written backward passes (same values
//! and gradients as burn's, up to float rounding; the tests in `super` compare them).
//!
//! burn 0.22's generic convolution backward, which flex uses, computes the weight gradient as a
//! convolution whose kernel is the whole output gradient and the input gradient as a transposed
//! convolution; its max pool writes 64-bit indices from a generic 3-D loop. Here:
//! - the weight gradient is one matrix product over an im2col of the input
//!   ([`kernels::im2col3x3`]) whose inner dimension is the whole batch;
//! - the input gradient is burn's transposed convolution, as in burn's own backward, without the
//!   rest of what that backward spends;
//! - the max pool is [`kernels::max_pool2x2`] with one byte per output saying which input won;
//! - BatchNorm is two passes over the activation forward and two backward
//!   ([`kernels::batch_norm_forward`], [`kernels::batch_norm_backward`]).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, AutodiffBackend, Backend, ExtensionType, Flex};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Shape, TensorData};

use super::kernels::{self, Winner};

/// Stride 1, padding 1, no dilation, one group: the network's 3x3 'same' convolution.
pub fn same3x3() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// The layers as backend operations. Implemented for flex and for flex under autodiff only;
/// [`super::conv3x3_relu`], [`super::max_pool2x2`] and [`super::batch_norm_train`] call them on flex
/// devices and use burn's layers (or tensor formulations) everywhere else.
#[backend_extension(Flex, Autodiff)]
pub trait TrainOps: Backend {
    /// 3x3 convolution, stride 1, padding 1, with bias, then ReLU:
    /// `[N, Cin, H, W] -> [N, Cout, H, W]`.
    fn conv3x3_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// 2x2 max pool, stride 2, floor: `[N, C, H, W] -> [N, C, H/2, W/2]`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// BatchNorm in training mode: normalised with the batch's statistics, which are returned
    /// (untracked) for the running averages.
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BatchNormOut<Self>;
}

/// What [`TrainOps::batch_norm_train`] returns: the output `[N, C, H, W]` and the batch's
/// per-channel mean and biased variance, each `[1, C, 1, 1]`.
#[derive(ExtensionType)]
pub struct BatchNormOut<B: Backend> {
    pub output: FloatTensor<B>,
    pub mean: FloatTensor<B>,
    pub variance: FloatTensor<B>,
}

impl TrainOps for Flex {
    fn conv3x3_relu(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let out = f32s(&Flex::conv2d(x, weight, Some(bias), same3x3()));
        map_in_place(out, kernels::relu_in_place)
    }

    fn max_pool2x2(x: FlexTensor) -> FlexTensor {
        pool_forward(x).0
    }

    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> BatchNormOut<Self> {
        norm_forward(&x, &gamma, &beta, epsilon).0
    }
}

/// BatchNorm's outputs and the per-channel values the backward pass needs (mean, variance).
fn norm_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (BatchNormOut<Flex>, Vec<f32>, Vec<f32>) {
    let [n, c, h, w] = dims4(x);
    let (x, gamma, beta) = (f32s(x), f32s(gamma), f32s(beta));
    let (y, mean, variance) = kernels::batch_norm_forward(
        x.as_slice::<f32>().expect("contiguous f32"),
        n,
        c,
        h * w,
        gamma.as_slice::<f32>().expect("contiguous f32"),
        beta.as_slice::<f32>().expect("contiguous f32"),
        epsilon,
    );
    let out = BatchNormOut {
        output: from_vec(y, [n, c, h, w]),
        mean: from_vec(mean.clone(), [1, c, 1, 1]),
        variance: from_vec(variance.clone(), [1, c, 1, 1]),
    };
    (out, mean, variance)
}

#[derive(Debug)]
struct BatchNormBackward;

/// What BatchNorm's backward needs: the input, gamma, the batch's mean and variance, epsilon.
#[derive(Debug, Clone)]
struct BatchNormState {
    x: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    variance: Vec<f32>,
    epsilon: f64,
}

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BatchNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = f32s(&grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let [n, c, h, w] = dims4(&s.x);
        let (dx, dgamma, dbeta) = kernels::batch_norm_backward(
            s.x.as_slice::<f32>().expect("contiguous f32"),
            grad.as_slice::<f32>().expect("contiguous f32"),
            n,
            c,
            h * w,
            &s.gamma,
            &s.mean,
            &s.variance,
            s.epsilon,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, from_vec(dx, [n, c, h, w]));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, from_vec(dgamma, [c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, from_vec(dbeta, [c]));
        }
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

fn f32s(t: &FlexTensor) -> FlexTensor {
    assert_eq!(
        t.dtype(),
        burn::tensor::DType::F32,
        "fast ops run on f32 tensors"
    );
    t.to_contiguous()
}

fn from_vec(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// `f` applied to the values of a contiguous f32 tensor: in place when the tensor owns its buffer
/// alone (a fresh result), else on a copy.
fn map_in_place(mut t: FlexTensor, f: impl FnOnce(&mut [f32])) -> FlexTensor {
    let len = t.layout().num_elements();
    if let Some(values) = t.try_storage_mut::<f32>().filter(|v| v.len() == len) {
        f(values);
        return t;
    }
    let shape = t.layout().shape().clone();
    let mut values = t.as_slice::<f32>().expect("contiguous f32").to_vec();
    f(&mut values);
    from_vec(values, shape)
}

/// The pooled tensor and the winner of each window (kept for the backward pass).
fn pool_forward(x: FlexTensor) -> (FlexTensor, Vec<Winner>) {
    let [n, c, h, w] = dims4(&x);
    let x = f32s(&x);
    let data = x.as_slice::<f32>().expect("contiguous f32");
    let (out, winners) = kernels::max_pool2x2(data, n * c, h, w);
    (from_vec(out, [n, c, h / 2, w / 2]), winners)
}

/// The input gradient of the convolution: burn's transposed convolution of the output gradient
/// (what burn's own backward calls; as fast as a forward convolution with flipped weights on
/// these shapes, measured with `cargo run --release -p host-trainer --example conv_grad`).
fn conv_input_grad(weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
    Flex::conv_transpose2d(
        grad,
        weight,
        None,
        ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1),
    )
}

/// The weight gradient: `grad [Cout, N·HW] · colsᵀ [N·HW, Cin·9]`, one matrix product whose
/// inner dimension is the whole batch.
fn conv_weight_grad(x: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    let [n, cin, h, w] = dims4(x);
    let cout = dims4(&grad)[1];
    let x = f32s(x);
    let cols = kernels::im2col3x3(x.as_slice::<f32>().expect("contiguous f32"), n, cin, h, w);
    let cols = from_vec(cols, [cin * 9, n * h * w]);
    let grad = f32s(&Flex::float_swap_dims(grad, 0, 1));
    let grad = Flex::float_reshape(grad, Shape::new([cout, n * h * w]));
    let product = Flex::float_matmul(grad, Flex::float_swap_dims(cols, 0, 1));
    Flex::float_reshape(product, Shape::new([cout, cin, 3, 3]))
}

/// The bias gradient: the output gradient summed over the batch and the plane.
fn conv_bias_grad(grad: FlexTensor) -> FlexTensor {
    let [n, cout, h, w] = dims4(&grad);
    let grad = Flex::float_reshape(f32s(&grad), Shape::new([n, cout, h * w]));
    let per_image = Flex::float_sum_dim(grad, 2);
    Flex::float_reshape(Flex::float_sum_dim(per_image, 0), Shape::new([cout]))
}

#[derive(Debug)]
struct Conv3x3ReluBackward;

impl Backward<Flex, 3> for Conv3x3ReluBackward {
    /// The input, the weights and the output (after the ReLU).
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let (x, weight, out) = ops.state;
        // Through the ReLU: the gradient where the output is positive, zero elsewhere.
        let grad = f32s(&grads.consume::<Flex>(&ops.node));
        let out = out.as_slice::<f32>().expect("contiguous f32");
        let grad = map_in_place(grad, |g| kernels::relu_backward_in_place(g, out));
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, conv_input_grad(weight, grad.clone()));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, conv_weight_grad(&x, grad.clone()));
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, conv_bias_grad(grad));
        }
    }
}

#[derive(Debug)]
struct MaxPool2x2Backward;

impl Backward<Flex, 1> for MaxPool2x2Backward {
    /// The input's shape and the winner of each window.
    type State = ([usize; 4], Vec<Winner>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let ([n, c, h, w], winners) = ops.state;
        if let Some(node) = node_x {
            let grad = f32s(&grad);
            let dx = kernels::max_pool2x2_backward(
                grad.as_slice::<f32>().expect("contiguous f32"),
                &winners,
                n * c,
                h,
                w,
            );
            grads.register::<Flex>(node.id, from_vec(dx, [n, c, h, w]));
        }
    }
}

impl<C: CheckpointStrategy> TrainOps for Autodiff<Flex, C> {
    fn conv3x3_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match Conv3x3ReluBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let out = Flex::conv3x3_relu(x.clone(), weight.clone(), bias.into_primitive());
                prep.finish((x, weight, out.clone()), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv3x3_relu(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BatchNormOut<Self> {
        let untracked = |t: FlexTensor| <Self as AutodiffBackend>::from_inner(t);
        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = f32s(x.primitive());
                let gamma = f32s(gamma.primitive());
                let (out, mean, variance) = norm_forward(&x, &gamma, beta.primitive(), epsilon);
                let state = BatchNormState {
                    x,
                    gamma: gamma.as_slice::<f32>().expect("contiguous f32").to_vec(),
                    mean,
                    variance,
                    epsilon,
                };
                BatchNormOut {
                    output: prep.finish(state, out.output),
                    mean: untracked(out.mean),
                    variance: untracked(out.variance),
                }
            }
            OpsKind::UnTracked(prep) => {
                let (out, _, _) =
                    norm_forward(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
                BatchNormOut {
                    output: prep.finish(out.output),
                    mean: untracked(out.mean),
                    variance: untracked(out.variance),
                }
            }
        }
    }

    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2x2Backward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let shape = dims4(&x);
                let (out, winners) = pool_forward(x);
                prep.finish((shape, winners), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::max_pool2x2(x.into_primitive())),
        }
    }
}
