//! Float model import through tract: ONNX (`tract-onnx`) and TF frozen graphs
//! (`tract-tensorflow`) → our IR [`Graph`] of float ops, ready for the calibrator.
//!
//! Steps: tract parses the model; `--outputs` / `--inputs` cut it (TF Object Detection API
//! graphs carry pre- and post-processing subgraphs the calibrator cannot and should not
//! quantize); tract infers types and shapes and folds everything constant into constants
//! (`into_typed`); [`translate`] maps tract's typed ops onto ours, turning NCHW activations
//! into NHWC and weights into TFLite layouts; [`fold`] folds per-channel Mul/Add (batch norm,
//! bias) into conv / depthwise / fully-connected weights and fuses RELU / RELU6 into them.
//!
//! Not tract's full `declutter`: it rewrites 1x1 convolutions as `EinSum` and moves axes
//! around, which loses the conv structure the int8 kernels need.

pub mod fold;
pub mod translate;

use std::path::{Path, PathBuf};

use spotter::model::Graph;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoArcTensor,
    OutletId, TDim, TractError,
};
use tract_onnx::tract_core::internal::DimLike;
use tract_onnx::tract_hir::infer::GenericFactoid;

/// Model file formats the calibrator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Tflite,
    Onnx,
    TfFrozen,
}

impl Format {
    /// From the extension: `.tflite`, `.onnx`, `.pb`.
    pub fn from_path(path: &Path) -> Result<Format, ImportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("tflite") => Ok(Format::Tflite),
            Some("onnx") => Ok(Format::Onnx),
            Some("pb") => Ok(Format::TfFrozen),
            _ => Err(ImportError::UnknownFormat(path.to_path_buf())),
        }
    }
}

/// Where to cut the source graph (names of tract nodes: ONNX/TF node or tensor names).
#[derive(Clone, Debug, Default)]
pub struct Cut {
    /// Nodes whose first output becomes a graph input (everything upstream is dropped).
    pub inputs: Vec<String>,
    /// Node outputs that become the graph outputs (everything downstream is dropped).
    pub outputs: Vec<String>,
    /// Shape of the (single) input when the source does not say it, e.g. `[1, 300, 300, 3]`
    /// (NHWC) or `[1, 3, 300, 300]` (NCHW).
    pub input_shape: Option<Vec<usize>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: unknown model format (expected .tflite, .onnx or .pb)")]
    UnknownFormat(PathBuf),
    #[error("{path}: tract could not {what}: {source:#}")]
    Tract {
        path: PathBuf,
        what: &'static str,
        source: TractError,
    },
    #[error("{path}: {flag} {name}: no node of that name in the model")]
    UnknownNode {
        path: PathBuf,
        flag: &'static str,
        name: String,
    },
    #[error(
        "{path}: the shape of input '{name}' is not known ({fact}); give it with --input-shape"
    )]
    UnknownInputShape {
        path: PathBuf,
        name: String,
        fact: String,
    },
    #[error("node '{node}' ({op}): {why}")]
    Unsupported {
        node: String,
        op: String,
        why: String,
    },
    #[error("internal error: the imported graph is invalid: {0}")]
    Invalid(String),
}

fn tract_err(path: &Path, what: &'static str) -> impl FnOnce(TractError) -> ImportError {
    let path = path.to_path_buf();
    move |source| ImportError::Tract { path, what, source }
}

/// Import an ONNX or TF frozen graph as a float [`Graph`] (NHWC, TFLite weight layouts).
pub fn import(path: &Path, format: Format, cut: &Cut) -> Result<Graph, ImportError> {
    let model = match format {
        Format::Onnx => tract_onnx::onnx().model_for_path(path),
        Format::TfFrozen => tract_tensorflow::tensorflow().model_for_path(path),
        Format::Tflite => return Err(ImportError::UnknownFormat(path.to_path_buf())),
    }
    .map_err(tract_err(path, "parse the model"))?;
    let mut model = cut_model(model, path, cut)?;
    if format == Format::TfFrozen {
        tf_pad_paddings_as_tdim(&mut model);
    }
    let typed = model
        .into_typed()
        .map_err(tract_err(path, "infer types and shapes"))?;
    let mut g = translate::translate(&typed)?;
    fold::fold_and_fuse(&mut g);
    g.validate().map_err(ImportError::Invalid)?;
    Ok(g)
}

/// tract-tensorflow's Pad wants its paddings as TDim, while TF graphs hold int32 constants:
/// convert those constants (only the ones feeding a Pad) so type inference succeeds.
fn tf_pad_paddings_as_tdim(m: &mut InferenceModel) {
    use tract_onnx::tract_hir::ops::konst::Const;
    let feeding_pads: Vec<usize> = m
        .nodes()
        .iter()
        .filter(|n| n.op.name() == "Pad")
        .filter_map(|n| n.inputs.get(1).map(|o| o.node))
        .collect();
    for id in feeding_pads {
        let node = &mut m.nodes_mut()[id];
        let Some(c) = node.op.as_op().downcast_ref::<Const>() else {
            continue;
        };
        let Ok(t) = c.val().cast_to::<TDim>() else {
            continue;
        };
        let Ok(k) = Const::new(t.into_owned().into_arc_tensor()) else {
            continue;
        };
        node.op = Box::new(k);
        node.outputs[0].fact = InferenceFact::default();
    }
}

fn node_id(
    m: &InferenceModel,
    path: &Path,
    flag: &'static str,
    name: &str,
) -> Result<usize, ImportError> {
    // ONNX/TF tensor names often carry an output index (`name:0`).
    let bare = name.strip_suffix(":0").unwrap_or(name);
    m.nodes()
        .iter()
        .find(|n| n.name == name || n.name == bare)
        .map(|n| n.id)
        .ok_or_else(|| ImportError::UnknownNode {
            path: path.to_path_buf(),
            flag,
            name: name.to_string(),
        })
}

/// Apply `--outputs`, then `--inputs` (the named node becomes a source; its producers are
/// dropped), then fix the input fact.
fn cut_model(mut m: InferenceModel, path: &Path, cut: &Cut) -> Result<InferenceModel, ImportError> {
    if !cut.outputs.is_empty() {
        let mut outlets = Vec::new();
        for name in &cut.outputs {
            outlets.push(OutletId::new(node_id(&m, path, "--outputs", name)?, 0));
        }
        m.select_output_outlets(&outlets)
            .map_err(tract_err(path, "select the --outputs"))?;
    }
    if !cut.inputs.is_empty() {
        // Facts as far as the uncut graph says, so a cut input keeps a known shape.
        let _ = m.analyse(true);
        let mut outlets = Vec::new();
        for name in &cut.inputs {
            let id = node_id(&m, path, "--inputs", name)?;
            let fact = m.nodes()[id].outputs[0].fact.clone();
            for (slot, &prev) in m.nodes()[id].inputs.clone().iter().enumerate() {
                let succ = &mut m.nodes_mut()[prev.node].outputs[prev.slot].successors;
                succ.retain(|s| !(s.node == id && s.slot == slot));
            }
            let node = &mut m.nodes_mut()[id];
            node.inputs.clear();
            node.op = Box::new(tract_onnx::tract_hir::ops::source::Source::new());
            node.outputs.truncate(1);
            node.outputs[0].fact = fact;
            outlets.push(OutletId::new(id, 0));
        }
        m.set_input_outlets(&outlets)
            .map_err(tract_err(path, "select the --inputs"))?;
        m = m
            .eliminate_dead_branches()
            .map_err(tract_err(path, "drop the cut-away subgraphs"))?;
    }
    let inputs = m
        .input_outlets()
        .map_err(tract_err(path, "list the inputs"))?
        .to_vec();
    for (ix, outlet) in inputs.iter().enumerate() {
        let name = m.nodes()[outlet.node].name.clone();
        let fact = m
            .outlet_fact(*outlet)
            .map_err(tract_err(path, "read the input facts"))?;
        let dims: Option<Vec<Option<usize>>> = (!fact.shape.is_open()).then(|| {
            fact.shape
                .dims()
                .map(|d| match d {
                    GenericFactoid::Only(t) => t.to_usize().ok(),
                    GenericFactoid::Any => None,
                })
                .collect()
        });
        let shape = match (&cut.input_shape, dims) {
            (Some(s), _) => s.clone(),
            (None, Some(dims)) => {
                let mut s = Vec::new();
                for d in dims {
                    match d {
                        Some(v) => s.push(v),
                        // A symbolic batch: the calibrator feeds one image at a time.
                        None if s.is_empty() => s.push(1),
                        None => {
                            return Err(ImportError::UnknownInputShape {
                                path: path.to_path_buf(),
                                name,
                                fact: format!("{fact:?}"),
                            })
                        }
                    }
                }
                s
            }
            (None, None) => {
                return Err(ImportError::UnknownInputShape {
                    path: path.to_path_buf(),
                    name,
                    fact: format!("{fact:?}"),
                })
            }
        };
        // Keep a known type (a uint8 image input is reported by the translator, with the
        // advice to cut); assume float when the source does not say.
        let dt = match fact.datum_type {
            GenericFactoid::Only(dt) => dt,
            GenericFactoid::Any => DatumType::F32,
        };
        let f = InferenceFact::dt_shape(dt, shape);
        m.set_input_fact(ix, f)
            .map_err(tract_err(path, "set the input fact"))?;
    }
    Ok(m)
}
