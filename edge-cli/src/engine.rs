//! The engine that turns a 48x48 face into scores: edge-runtime on the int8 model, or tract on
//! the float ONNX of the same model (for comparison), and the rule that ties `--onnx` to
//! `--engine tract` and `--model`.

use std::path::Path;

use anyhow::Result;
use edge_runtime::{Model, CLASS_COUNT};

/// Which engine classifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Int8,
    Tract,
}

/// A ready engine: the int8 runtime with its arena, or a tract plan of the float ONNX.
pub enum Engine<'m> {
    Int8 {
        model: &'m Model<'m>,
        arena: Vec<i8>,
        /// Flip test-time augmentation ([`Engine::mirrored`]).
        mirror: bool,
    },
    #[cfg(feature = "tract")]
    Tract(std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>),
}

impl<'m> Engine<'m> {
    /// The int8 runtime on `model`, or tract on the float ONNX (`onnx`, default: the embedded
    /// published one).
    ///
    /// # Errors
    /// An unreadable or invalid ONNX file.
    pub fn new(model: &'m Model<'m>, kind: EngineKind, onnx: Option<&Path>) -> Result<Self> {
        Ok(match kind {
            EngineKind::Int8 => Engine::Int8 {
                model,
                arena: vec![0i8; model.arena_size()],
                mirror: false,
            },
            #[cfg(feature = "tract")]
            EngineKind::Tract => Engine::Tract(crate::tract_engine::load(onnx)?),
            #[cfg(not(feature = "tract"))]
            EngineKind::Tract => {
                let _ = onnx;
                anyhow::bail!(
                    "--engine tract: this edge-cli was built without the `tract` feature \
                     (rebuild without --no-default-features)"
                )
            }
        })
    }

    /// The same engine with flip test-time augmentation on or off.
    ///
    /// # Errors
    /// `on` for the tract engine (it runs one pass).
    pub fn mirrored(mut self, on: bool) -> Result<Self> {
        match &mut self {
            Engine::Int8 { mirror, .. } => *mirror = on,
            #[cfg(feature = "tract")]
            Engine::Tract(_) if on => {
                anyhow::bail!("--mirror is an option of the int8 engine, not of --engine tract")
            }
            #[cfg(feature = "tract")]
            Engine::Tract(_) => {}
        }
        Ok(self)
    }

    /// Softmax scores and, for the int8 engine without `--mirror`, the int8 logits.
    pub fn scores(
        &mut self,
        input: &[u8],
    ) -> Result<([f32; CLASS_COUNT], Option<[i8; CLASS_COUNT]>)> {
        match self {
            Engine::Int8 {
                model,
                arena,
                mirror,
            } => {
                let out_q = edge_runtime::pipeline::output_q(model);
                let failed = |e: edge_runtime::Error| anyhow::anyhow!("{e}");
                if *mirror {
                    // The label comes from the scores' order, which is the integer argmax of
                    // the summed logits (first class on ties).
                    let sums = model.run_mirrored(input, arena).map_err(failed)?;
                    return Ok((edge_runtime::scores::softmax_mirrored(&sums, out_q), None));
                }
                let logits = model.run(input, arena).map_err(failed)?;
                Ok((
                    edge_runtime::scores::softmax(&logits, out_q),
                    Some(logits.0),
                ))
            }
            #[cfg(feature = "tract")]
            Engine::Tract(plan) => {
                use tract_onnx::prelude::*;
                let out = plan.run(tvec!(crate::tract_engine::input(input)?.into()))?;
                let v = out[0].to_plain_array_view::<f32>()?;
                let mut s = [0f32; CLASS_COUNT];
                for (o, x) in s.iter_mut().zip(v.iter()) {
                    *o = *x;
                }
                Ok((s, None))
            }
        }
    }
}

/// Checks that the model files given on the command line are the ones that will run: `--onnx` is
/// read by the tract engine only, and the tract engine given an int8 `--model` needs that
/// model's float ONNX (otherwise it would run the embedded published one and compare the wrong
/// models). `tract_runs` says whether the command runs tract.
///
/// # Errors
/// `--onnx` without tract, or tract with `--model` but without `--onnx`.
pub fn check_model_files(
    model: Option<&Path>,
    tract_runs: bool,
    onnx: Option<&Path>,
) -> Result<()> {
    match (tract_runs, model, onnx) {
        (false, _, Some(onnx)) => anyhow::bail!(
            "--onnx {}: only the tract engine reads a float ONNX; the int8 engine runs --model \
             (or the embedded model). Pass --engine tract to run the ONNX",
            onnx.display()
        ),
        (true, Some(model), None) => anyhow::bail!(
            "--model {} is an int8 file and the tract engine runs a float ONNX: pass that \
             model's float ONNX with --onnx (host-trainer writes NAME.onnx beside \
             NAME.int8.bin); without it tract would run the embedded published model",
            model.display()
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_and_model_must_be_the_files_that_run() {
        let m = Some(Path::new("mine.int8.bin"));
        let o = Some(Path::new("mine.onnx"));
        assert!(check_model_files(None, false, None).is_ok());
        assert!(check_model_files(m, false, None).is_ok());
        assert!(check_model_files(None, true, None).is_ok());
        assert!(check_model_files(None, true, o).is_ok());
        assert!(check_model_files(m, true, o).is_ok());
        let e = check_model_files(None, false, o).unwrap_err().to_string();
        assert!(
            e.contains("--onnx mine.onnx") && e.contains("--engine tract"),
            "{e}"
        );
        let e = check_model_files(m, true, None).unwrap_err().to_string();
        assert!(
            e.contains("--model mine.int8.bin") && e.contains("--onnx"),
            "{e}"
        );
    }
}
