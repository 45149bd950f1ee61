//! tract typed model → our IR float ops.
//!
//! Layout: our activations are NHWC. A rank-4 tract value that is logically NCHW (ONNX) is
//! stored transposed, as NHWC, and marked [`Layout::Nchw`]; ops on it remap their axes. A
//! transpose NCHW ↔ NHWC (`AxisOp::Move(1, 3)` / `Move(3, 1)`, as tf2onnx and tflite2onnx
//! put around every conv and before every head reshape) is then absorbed: it only flips the
//! mark. Reshapes of an NCHW value are absorbed only when NCHW and NHWC orders coincide
//! (`H = W = 1` or `C = 1`); otherwise the node is reported as unsupported.
//!
//! Constants stay tract tensors until an op consumes them: weights are rewritten into
//! TFLite layouts (conv `[O, KH, KW, I]`, depthwise `[1, KH, KW, C*M]`, FC `[O, I]`), operands
//! of elementwise ops into NHWC broadcast shapes.

use std::collections::HashMap;
use std::sync::Arc;

use spotter::model::{
    Activation, Conv2DOptions, DType, Graph, Op, OpKind, Padding, Pool2DOptions, RequantMode,
    Tensor as IrTensor, TensorId,
};
use tract_onnx::prelude::{
    DatumType, IntoArcTensor, IntoTValue, OutletId, Tensor, TypedModel, TypedNode,
};
use tract_onnx::tract_core::ops::array::{FiniteReshape, Pad, PadMode, TypedConcat};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, MaxPool, PaddingSpec, PoolSpec, SumPool};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::{DataFormat, Softmax, SoftmaxKind};

use super::ImportError;

/// How a rank-4 activation is stored relative to tract's logical axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Our shape is tract's shape.
    Same,
    /// tract's value is `[N, C, H, W]`; ours is `[N, H, W, C]`.
    Nchw,
}

impl Layout {
    /// Our axis for tract's logical axis `a`.
    fn axis(self, a: usize) -> usize {
        match self {
            Layout::Same => a,
            Layout::Nchw => [0, 3, 1, 2][a],
        }
    }

    /// Our shape for tract's logical shape.
    fn shape(self, s: &[usize]) -> Vec<usize> {
        match self {
            Layout::Same => s.to_vec(),
            Layout::Nchw => vec![s[0], s[2], s[3], s[1]],
        }
    }
}

#[derive(Clone)]
enum Val {
    Const(Arc<Tensor>),
    Act(TensorId, Layout),
    /// `0 > x` (tract's PRelu is `Iff(0 > x, x * slope, x)`): consumed by that `Iff` only.
    Negative(TensorId),
}

struct Translator<'a> {
    model: &'a TypedModel,
    g: Graph,
    vals: HashMap<OutletId, Val>,
    /// Our RELU ops by output tensor, for `Min(relu(x), 6)` → RELU6.
    relu_op: HashMap<TensorId, usize>,
    /// Our MUL-by-constant ops by output tensor: (op, activation input), for PRelu.
    mul_op: HashMap<TensorId, (usize, TensorId)>,
}

fn unsupported(node: &TypedNode, why: impl Into<String>) -> ImportError {
    ImportError::Unsupported {
        node: node.name.clone(),
        op: node.op.name().to_string(),
        why: why.into(),
    }
}

/// Translate a typed tract model whose inputs and outputs are float activations.
pub fn translate(model: &TypedModel) -> Result<Graph, ImportError> {
    let mut t = Translator {
        model,
        g: Graph::default(),
        vals: HashMap::new(),
        relu_op: HashMap::new(),
        mul_op: HashMap::new(),
    };
    let order = model
        .eval_order()
        .map_err(|e| ImportError::Invalid(format!("{e:#}")))?;
    let inputs = model
        .input_outlets()
        .map_err(|e| ImportError::Invalid(format!("{e:#}")))?;
    for id in order {
        let node = model.node(id);
        if inputs.iter().any(|o| o.node == id) {
            t.source(node)?;
        } else {
            t.node(node)?;
        }
    }
    for o in model
        .output_outlets()
        .map_err(|e| ImportError::Invalid(format!("{e:#}")))?
    {
        let node = model.node(o.node);
        match t.vals.get(o) {
            // Outputs are NHWC (what TFLite detectors give); an NCHW output stays in our
            // layout, and says so in the name-level docs of the model, not silently here.
            Some(Val::Act(id, _)) => t.g.outputs.push(*id),
            _ => {
                return Err(unsupported(
                    node,
                    "a graph output must be computed from the input",
                ))
            }
        }
    }
    Ok(t.g)
}

fn tensor_name(node: &TypedNode, slot: usize) -> String {
    if slot == 0 {
        node.name.clone()
    } else {
        format!("{}:{slot}", node.name)
    }
}

fn f32_values(node: &TypedNode, t: &Tensor) -> Result<Vec<f32>, ImportError> {
    let c = t
        .cast_to::<f32>()
        .map_err(|e| unsupported(node, format!("constant of type {:?}: {e}", t.datum_type())))?;
    let v = c
        .to_plain_array_view::<f32>()
        .map_err(|e| unsupported(node, format!("constant: {e}")))?;
    Ok(v.iter().copied().collect())
}

/// Transpose row-major `data` of `shape` by `perm` (output axis `i` is input axis `perm[i]`).
pub fn permute(data: &[f32], shape: &[usize], perm: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let rank = shape.len();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * shape[i + 1];
    }
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        let src: usize = (0..rank).map(|i| idx[i] * in_strides[perm[i]]).sum();
        out.push(data[src]);
        for i in (0..rank).rev() {
            idx[i] += 1;
            if idx[i] < out_shape[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    (out, out_shape)
}

/// TFLite SAME padding (before, after) for one spatial dim.
fn same_pads(input: usize, k: usize, stride: usize, dil: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let eff = (k - 1) * dil + 1;
    let total = (out.saturating_sub(1) * stride + eff).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// Explicit (before, after) padding of the two spatial dims (H, W).
type SpatialPads = [(usize, usize); 2];

/// Our padding for a tract pool spec on an input of spatial size `hw`: SAME / VALID, plus
/// explicit (before, after) per spatial dim when neither matches.
fn padding(spec: &PoolSpec, hw: [usize; 2]) -> Result<(Padding, Option<SpatialPads>), String> {
    let k = &spec.kernel_shape;
    if k.len() != 2 {
        return Err(format!(
            "{}-d kernels are not supported (2-d only)",
            k.len()
        ));
    }
    let strides = spec.strides();
    let dil = spec.dilations();
    let same: Vec<(usize, usize)> = (0..2)
        .map(|i| same_pads(hw[i], k[i], strides[i], dil[i]))
        .collect();
    let (before, after): (Vec<usize>, Vec<usize>) = match &spec.padding {
        PaddingSpec::Valid => return Ok((Padding::Valid, None)),
        PaddingSpec::SameUpper => return Ok((Padding::Same, None)),
        PaddingSpec::SameLower => same.iter().map(|&(b, a)| (a, b)).unzip(),
        PaddingSpec::Explicit(b, a) => (b.to_vec(), a.to_vec()),
        PaddingSpec::ExplicitOnnxPool(b, a, ceil) => {
            if *ceil {
                return Err("ceil_mode pooling is not supported".into());
            }
            (b.to_vec(), a.to_vec())
        }
    };
    if before.iter().chain(&after).all(|&p| p == 0) {
        return Ok((Padding::Valid, None));
    }
    if (0..2).all(|i| (before[i], after[i]) == same[i]) {
        return Ok((Padding::Same, None));
    }
    Ok((
        Padding::Valid,
        Some([(before[0], after[0]), (before[1], after[1])]),
    ))
}

impl Translator<'_> {
    fn add_tensor(&mut self, name: String, shape: Vec<usize>, data: Option<Vec<u8>>) -> TensorId {
        self.add_typed(name, shape, DType::F32, data)
    }

    fn add_typed(
        &mut self,
        name: String,
        shape: Vec<usize>,
        dtype: DType,
        data: Option<Vec<u8>>,
    ) -> TensorId {
        self.g.tensors.push(IrTensor {
            name,
            shape,
            dtype,
            quant: None,
            data,
        });
        self.g.tensors.len() - 1
    }

    fn add_f32(&mut self, name: String, shape: Vec<usize>, v: &[f32]) -> TensorId {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add_tensor(name, shape, Some(bytes))
    }

    fn add_i32(&mut self, name: String, shape: Vec<usize>, v: &[i32]) -> TensorId {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add_typed(name, shape, DType::I32, Some(bytes))
    }

    fn push(&mut self, kind: OpKind, inputs: Vec<Option<TensorId>>, out: TensorId) -> usize {
        self.g.ops.push(Op {
            kind,
            inputs,
            outputs: vec![out],
        });
        self.g.ops.len() - 1
    }

    fn shape(&self, node: &TypedNode, o: OutletId) -> Result<Vec<usize>, ImportError> {
        let fact = self
            .model
            .outlet_fact(o)
            .map_err(|e| unsupported(node, format!("{e:#}")))?;
        fact.shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| unsupported(node, format!("shape {:?} is not concrete", fact.shape)))
    }

    fn out_shape(&self, node: &TypedNode) -> Result<Vec<usize>, ImportError> {
        self.shape(node, OutletId::new(node.id, 0))
    }

    fn input(&self, node: &TypedNode, i: usize) -> Result<Val, ImportError> {
        let o = node
            .inputs
            .get(i)
            .ok_or_else(|| unsupported(node, format!("missing input {i}")))?;
        self.vals
            .get(o)
            .cloned()
            .ok_or_else(|| unsupported(node, format!("input {i} was not translated")))
    }

    fn act(&self, node: &TypedNode, i: usize) -> Result<(TensorId, Layout), ImportError> {
        match self.input(node, i)? {
            Val::Act(id, l) => Ok((id, l)),
            Val::Const(_) => Err(unsupported(
                node,
                format!("input {i} must not be a constant"),
            )),
            Val::Negative(_) => Err(unsupported(node, format!("input {i} is a comparison"))),
        }
    }

    fn konst(&self, node: &TypedNode, i: usize) -> Result<Arc<Tensor>, ImportError> {
        match self.input(node, i)? {
            Val::Const(t) => Ok(t),
            Val::Act(..) | Val::Negative(_) => Err(unsupported(
                node,
                format!("input {i} must be a constant (weights)"),
            )),
        }
    }

    /// A new activation for output 0 of `node` in `layout`, registered in `vals`.
    fn out_act(&mut self, node: &TypedNode, layout: Layout) -> Result<TensorId, ImportError> {
        let s = self.out_shape(node)?;
        if layout == Layout::Nchw && s.len() != 4 {
            return Err(unsupported(node, "an NCHW value must have rank 4"));
        }
        let id = self.add_tensor(tensor_name(node, 0), layout.shape(&s), None);
        self.vals
            .insert(OutletId::new(node.id, 0), Val::Act(id, layout));
        Ok(id)
    }

    fn alias(&mut self, node: &TypedNode, id: TensorId, layout: Layout) {
        self.vals
            .insert(OutletId::new(node.id, 0), Val::Act(id, layout));
    }

    fn source(&mut self, node: &TypedNode) -> Result<(), ImportError> {
        let s = self.out_shape(node)?;
        let dt = self
            .model
            .outlet_fact(OutletId::new(node.id, 0))
            .map(|f| f.datum_type)
            .map_err(|e| unsupported(node, format!("{e:#}")))?;
        if dt != DatumType::F32 {
            return Err(unsupported(
                node,
                format!(
                    "graph input of type {dt:?}: cut the model with --inputs at a float tensor"
                ),
            ));
        }
        // An image input [1, 3, H, W] is NCHW; ours is NHWC.
        let layout = if s.len() == 4 && s[1] == 3 && s[3] != 3 {
            Layout::Nchw
        } else {
            Layout::Same
        };
        let id = self.out_act(node, layout)?;
        self.g.inputs.push(id);
        Ok(())
    }

    fn node(&mut self, node: &TypedNode) -> Result<(), ImportError> {
        // Anything tract folded to a constant stays a constant until an op consumes it.
        if let Ok(fact) = self.model.outlet_fact(OutletId::new(node.id, 0)) {
            if let Some(k) = &fact.konst {
                for slot in 0..node.outputs.len() {
                    let f = self
                        .model
                        .outlet_fact(OutletId::new(node.id, slot))
                        .ok()
                        .and_then(|f| f.konst.clone())
                        .unwrap_or_else(|| k.clone());
                    self.vals
                        .insert(OutletId::new(node.id, slot), Val::Const(f));
                }
                return Ok(());
            }
        }
        // All-constant inputs (e.g. a Cast of a bias tract left unfolded): evaluate with tract.
        let ins: Option<Vec<Arc<Tensor>>> = node
            .inputs
            .iter()
            .map(|o| match self.vals.get(o) {
                Some(Val::Const(t)) => Some(t.clone()),
                _ => None,
            })
            .collect();
        if let Some(ins) = ins.filter(|i| !i.is_empty()) {
            let tv = ins.iter().map(|t| (**t).clone().into_tvalue()).collect();
            if let Ok(Some(outs)) = node.op.eval_out_of_plan(tv) {
                for (slot, o) in outs.into_iter().enumerate() {
                    self.vals.insert(
                        OutletId::new(node.id, slot),
                        Val::Const(o.into_arc_tensor()),
                    );
                }
                return Ok(());
            }
        }
        let op = &node.op;
        if let Some(c) = op.downcast_ref::<Conv>() {
            return self.conv(node, c);
        }
        if let Some(b) = op.downcast_ref::<TypedBinOp>() {
            return self.binary(node, b);
        }
        if let Some(e) = op.downcast_ref::<ElementWiseOp>() {
            let (x, l) = self.act(node, 0)?;
            let kind = match e.0.name().as_str() {
                "Sigmoid" => OpKind::Logistic,
                other => return Err(unsupported(node, format!("elementwise {other}"))),
            };
            let y = self.out_act(node, l)?;
            self.push(kind, vec![Some(x)], y);
            return Ok(());
        }
        if let Some(s) = op.downcast_ref::<Softmax>() {
            let (x, l) = self.act(node, 0)?;
            let rank = self.out_shape(node)?.len();
            if s.kind != SoftmaxKind::Softmax || s.axes.len() != 1 || l.axis(s.axes[0]) != rank - 1
            {
                return Err(unsupported(
                    node,
                    "only a softmax over the last (channel) axis is supported",
                ));
            }
            let y = self.out_act(node, l)?;
            self.push(OpKind::Softmax { beta: 1.0 }, vec![Some(x)], y);
            return Ok(());
        }
        if let Some(a) = op.downcast_ref::<AxisOp>() {
            return self.axis_op(node, a);
        }
        if op.downcast_ref::<FiniteReshape>().is_some() {
            return self.reshape(node);
        }
        if let Some(c) = op.downcast_ref::<TypedConcat>() {
            let mut ins = Vec::new();
            let mut layout = None;
            for i in 0..node.inputs.len() {
                let (x, l) = self.act(node, i)?;
                if layout.is_some_and(|p| p != l) {
                    return Err(unsupported(node, "inputs in different layouts"));
                }
                layout = Some(l);
                ins.push(Some(x));
            }
            let l = layout.unwrap_or(Layout::Same);
            let y = self.out_act(node, l)?;
            let axis = l.axis(c.axis);
            self.push(
                OpKind::Concatenation {
                    axis,
                    activation: Activation::None,
                },
                ins,
                y,
            );
            return Ok(());
        }
        if let Some(p) = op.downcast_ref::<Pad>() {
            return self.pad(node, p);
        }
        if let Some(p) = op.downcast_ref::<MaxPool>() {
            if p.with_index_outputs.is_some() {
                return Err(unsupported(node, "max pool with index outputs"));
            }
            return self.pool(node, &p.pool_spec, true, false);
        }
        if let Some(p) = op.downcast_ref::<SumPool>() {
            if !p.normalize {
                return Err(unsupported(node, "sum pooling (not an average)"));
            }
            return self.pool(node, &p.pool_spec, false, p.count_include_pad);
        }
        if let Some(e) = op.downcast_ref::<EinSum>() {
            return self.einsum(node, e);
        }
        if let Some(r) = op.downcast_ref::<tract_onnx_opl::resize::Resize>() {
            return self.resize(node, r);
        }
        match op.name().as_ref() {
            "Iff" => self.prelu(node),
            "Identity" => {
                let (x, l) = self.act(node, 0)?;
                self.alias(node, x, l);
                Ok(())
            }
            "Cast" => {
                let (x, l) = self.act(node, 0)?;
                let dt = self
                    .model
                    .outlet_fact(OutletId::new(node.id, 0))
                    .map(|f| f.datum_type)
                    .map_err(|e| unsupported(node, format!("{e:#}")))?;
                if dt != DatumType::F32 {
                    return Err(unsupported(node, format!("cast to {dt:?}")));
                }
                self.alias(node, x, l);
                Ok(())
            }
            _ => Err(unsupported(node, "no translation to a spotter op")),
        }
    }

    fn conv(&mut self, node: &TypedNode, c: &Conv) -> Result<(), ImportError> {
        if c.q_params.is_some() {
            return Err(unsupported(
                node,
                "quantized conv (import float models only)",
            ));
        }
        let (x, l) = self.act(node, 0)?;
        match (c.pool_spec.data_format, l) {
            (DataFormat::NCHW, Layout::Nchw) | (DataFormat::NHWC, Layout::Same) => {}
            (f, l) => {
                return Err(unsupported(
                    node,
                    format!("{f:?} conv on a value stored as {l:?}"),
                ))
            }
        }
        let in_shape = self.g.tensors[x].shape.clone(); // NHWC
        if in_shape.len() != 4 {
            return Err(unsupported(node, "conv input must have rank 4"));
        }
        let kernel = self.konst(node, 1)?;
        let bias = self.konst(node, 2)?;
        let (kh, kw) = match c.pool_spec.kernel_shape.as_slice() {
            [h, w] => (*h, *w),
            other => {
                return Err(unsupported(
                    node,
                    format!("kernel shape {other:?} (2-d only)"),
                ))
            }
        };
        let group = c.group;
        let cin = c.pool_spec.input_channels;
        let cout = c.pool_spec.output_channels;
        // tract's canonical [G, O/G, I/G, KH*KW].
        let k = c
            .kernel_fmt
            .kernel_as_group_o_i_hw(&kernel, group)
            .map_err(|e| unsupported(node, format!("kernel: {e:#}")))?;
        let kv = f32_values(node, &k)?;
        let (og, ig) = (cout / group, cin / group);
        let depthwise = group > 1 && group == cin;
        if group > 1 && !depthwise {
            return Err(unsupported(
                node,
                format!(
                    "grouped conv with {group} groups of {ig} channels (only group 1 or depthwise)"
                ),
            ));
        }
        let hw = kh * kw;
        let (weights, wshape) = if depthwise {
            // [C, M, 1, HW] → [1, KH, KW, C*M]; output channel c*M+m reads input channel c.
            let mut w = vec![0f32; hw * cout];
            for g in 0..group {
                for m in 0..og {
                    for p in 0..hw {
                        w[p * cout + g * og + m] = kv[(g * og + m) * hw + p];
                    }
                }
            }
            (w, vec![1, kh, kw, cout])
        } else {
            // [1, O, I, HW] → [O, KH, KW, I].
            let mut w = vec![0f32; cout * hw * ig];
            for o in 0..cout {
                for i in 0..ig {
                    for p in 0..hw {
                        w[(o * hw + p) * ig + i] = kv[(o * ig + i) * hw + p];
                    }
                }
            }
            (w, vec![cout, kh, kw, ig])
        };
        let bv = f32_values(node, &bias)?;
        let bias_v = match bv.len() {
            n if n == cout => bv,
            1 => vec![bv[0]; cout],
            0 => vec![0.0; cout],
            n => {
                return Err(unsupported(
                    node,
                    format!("bias of {n} values for {cout} channels"),
                ))
            }
        };
        let (pad, explicit) =
            padding(&c.pool_spec, [in_shape[1], in_shape[2]]).map_err(|w| unsupported(node, w))?;
        let x = match explicit {
            Some(p) => self.explicit_pad(node, x, &in_shape, p)?,
            None => x,
        };
        let wid = self.add_f32(format!("{}/weights", node.name), wshape, &weights);
        let bid = self.add_f32(format!("{}/bias", node.name), vec![cout], &bias_v);
        let strides = c.pool_spec.strides();
        let dil = c.pool_spec.dilations();
        let opts = Conv2DOptions {
            padding: pad,
            stride_h: strides[0],
            stride_w: strides[1],
            dilation_h: dil[0],
            dilation_w: dil[1],
            activation: Activation::None,
            requant: RequantMode::Tflite,
        };
        let y = self.out_act(node, l)?;
        let kind = if depthwise {
            OpKind::DepthwiseConv2D {
                conv: opts,
                depth_multiplier: og,
            }
        } else {
            OpKind::Conv2D(opts)
        };
        self.push(kind, vec![Some(x), Some(wid), Some(bid)], y);
        Ok(())
    }

    /// A zero PAD of the spatial dims of NHWC `x` (explicit conv / pool padding).
    fn explicit_pad(
        &mut self,
        node: &TypedNode,
        x: TensorId,
        shape: &[usize],
        p: [(usize, usize); 2],
    ) -> Result<TensorId, ImportError> {
        let pads = [
            0,
            0,
            p[0].0 as i32,
            p[0].1 as i32,
            p[1].0 as i32,
            p[1].1 as i32,
            0,
            0,
        ];
        let pid = self.add_i32(format!("{}/paddings", node.name), vec![4, 2], &pads);
        let out_shape = vec![
            shape[0],
            shape[1] + p[0].0 + p[0].1,
            shape[2] + p[1].0 + p[1].1,
            shape[3],
        ];
        let y = self.add_tensor(format!("{}/pad", node.name), out_shape, None);
        self.push(OpKind::Pad, vec![Some(x), Some(pid)], y);
        Ok(y)
    }

    /// A constant operand of an elementwise op on an activation of logical rank `rank` in
    /// `layout`: broadcast-aligned, transposed to NHWC, leading ones dropped.
    fn operand(
        &mut self,
        node: &TypedNode,
        t: &Tensor,
        rank: usize,
        layout: Layout,
        map: impl Fn(f32) -> f32,
    ) -> Result<TensorId, ImportError> {
        let v: Vec<f32> = f32_values(node, t)?.into_iter().map(map).collect();
        let mut shape = t.shape().to_vec();
        if shape.len() > rank {
            return Err(unsupported(
                node,
                "constant operand of higher rank than the activation",
            ));
        }
        while shape.len() < rank {
            shape.insert(0, 1);
        }
        let (v, mut shape) = match layout {
            Layout::Same => (v, shape),
            Layout::Nchw => permute(&v, &shape, &[0, 2, 3, 1]),
        };
        while shape.len() > 1 && shape[0] == 1 {
            shape.remove(0);
        }
        Ok(self.add_f32(format!("{}/const", node.name), shape, &v))
    }

    fn binary(&mut self, node: &TypedNode, b: &TypedBinOp) -> Result<(), ImportError> {
        let name = b.0.name();
        let (a, c) = (self.input(node, 0)?, self.input(node, 1)?);
        let rank = self.out_shape(node)?.len();
        match (a, c) {
            (Val::Act(x, lx), Val::Act(z, lz)) => {
                if lx != lz {
                    return Err(unsupported(node, "operands in different layouts"));
                }
                let kind = match name {
                    "Add" => OpKind::Add {
                        activation: Activation::None,
                    },
                    "Mul" => OpKind::Mul {
                        activation: Activation::None,
                    },
                    other => return Err(unsupported(node, format!("{other} of two activations"))),
                };
                let y = self.out_act(node, lx)?;
                self.push(kind, vec![Some(x), Some(z)], y);
                Ok(())
            }
            (Val::Act(x, l), Val::Const(k)) => self.binary_const(node, name, x, l, &k, rank, false),
            (Val::Const(k), Val::Act(x, _)) if name == "Greater" || name == "GT" => {
                // 0 > x, the test of tract's PRelu expansion.
                if f32_values(node, &k)?.iter().all(|&v| v == 0.0) {
                    self.vals
                        .insert(OutletId::new(node.id, 0), Val::Negative(x));
                    Ok(())
                } else {
                    Err(unsupported(node, "comparison with a non-zero constant"))
                }
            }
            (Val::Const(k), Val::Act(x, l)) => self.binary_const(node, name, x, l, &k, rank, true),
            (Val::Const(_), Val::Const(_)) => {
                Err(unsupported(node, "constant operands were not folded"))
            }
            _ => Err(unsupported(node, format!("{name} of a comparison"))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary_const(
        &mut self,
        node: &TypedNode,
        name: &str,
        x: TensorId,
        l: Layout,
        k: &Tensor,
        rank: usize,
        const_first: bool,
    ) -> Result<(), ImportError> {
        let all = |v: f32| -> Result<bool, ImportError> {
            Ok(f32_values(node, k)?.iter().all(|&e| e == v))
        };
        let none = Activation::None;
        match (name, const_first) {
            ("Add", _) | ("Sub", false) => {
                let neg = name == "Sub";
                let c = self.operand(node, k, rank, l, |v| if neg { -v } else { v })?;
                let y = self.out_act(node, l)?;
                self.push(OpKind::Add { activation: none }, vec![Some(x), Some(c)], y);
            }
            ("Mul", _) | ("Div", false) => {
                let div = name == "Div";
                let c = self.operand(node, k, rank, l, |v| if div { 1.0 / v } else { v })?;
                let y = self.out_act(node, l)?;
                let i = self.push(OpKind::Mul { activation: none }, vec![Some(x), Some(c)], y);
                self.mul_op.insert(y, (i, x));
            }
            ("Max", _) if all(0.0)? => {
                let y = self.out_act(node, l)?;
                let i = self.push(OpKind::Relu, vec![Some(x)], y);
                self.relu_op.insert(y, i);
            }
            ("Min", _) if all(6.0)? => {
                // Clip(0, 6) = Min(Max(x, 0), 6): turn the RELU that feeds only us into RELU6.
                let single = self.single_consumer(node);
                match self.relu_op.get(&x) {
                    Some(&i) if single => {
                        self.g.ops[i].kind = OpKind::Relu6;
                        self.relu_op.remove(&x);
                        self.alias(node, x, l);
                    }
                    _ => {
                        return Err(unsupported(
                            node,
                            "Min(x, 6) is supported only after Max(x, 0) (RELU6)",
                        ))
                    }
                }
            }
            (other, _) => {
                return Err(unsupported(
                    node,
                    format!(
                        "{other} with a constant{}",
                        if const_first { " first operand" } else { "" }
                    ),
                ))
            }
        }
        Ok(())
    }

    /// `Iff(0 > x, x * slope, x)` (tract's PRelu): the MUL becomes PRELU(x, slope).
    fn prelu(&mut self, node: &TypedNode) -> Result<(), ImportError> {
        let not_prelu = || unsupported(node, "only the PRelu pattern Iff(0 > x, x * slope, x)");
        let (Val::Negative(t), Val::Act(m, l), Val::Act(x, lx)) = (
            self.input(node, 0)?,
            self.input(node, 1)?,
            self.input(node, 2)?,
        ) else {
            return Err(not_prelu());
        };
        let Some(&(i, mx)) = self.mul_op.get(&m) else {
            return Err(not_prelu());
        };
        let mul_out = node.inputs[1];
        let single = self.model.node(mul_out.node).outputs[mul_out.slot]
            .successors
            .len()
            == 1;
        if t != x || mx != x || l != lx || !single {
            return Err(not_prelu());
        }
        self.g.ops[i].kind = OpKind::Prelu;
        self.mul_op.remove(&m);
        self.g.tensors[m].name = node.name.clone();
        self.alias(node, m, l);
        Ok(())
    }

    /// True when input 0 of `node` (a RELU output) is read by `node` only.
    fn single_consumer(&self, node: &TypedNode) -> bool {
        let o = node.inputs[0];
        self.model.node(o.node).outputs[o.slot].successors.len() == 1
            && !self
                .model
                .output_outlets()
                .map(|outs| outs.contains(&o))
                .unwrap_or(true)
    }

    fn axis_op(&mut self, node: &TypedNode, a: &AxisOp) -> Result<(), ImportError> {
        let (x, l) = self.act(node, 0)?;
        let in_shape = self.shape(node, node.inputs[0])?;
        match (a, l) {
            // Transposes between NCHW and NHWC only flip how we read our NHWC tensor.
            (AxisOp::Move(1, 3), Layout::Nchw) if in_shape.len() == 4 => {
                self.alias(node, x, Layout::Same);
                Ok(())
            }
            (AxisOp::Move(3, 1), Layout::Same) if in_shape.len() == 4 => {
                self.alias(node, x, Layout::Nchw);
                Ok(())
            }
            (AxisOp::Move(from, to), Layout::Same) => {
                // A move keeps the memory order when the axes it jumps over (or itself) are 1.
                let (lo, hi) = ((*from).min(*to), (*from).max(*to));
                if in_shape[*from] == 1
                    || (lo..=hi).filter(|&i| i != *from).all(|i| in_shape[i] == 1)
                {
                    self.reshape(node)
                } else {
                    Err(unsupported(
                        node,
                        format!("transpose {a:?} of {in_shape:?} cannot be absorbed"),
                    ))
                }
            }
            (_, Layout::Same) => self.reshape(node),
            (_, Layout::Nchw) => {
                // NCHW and NHWC orders coincide when H = W = 1 or C = 1.
                if (in_shape[2] == 1 && in_shape[3] == 1) || in_shape[1] == 1 {
                    if let AxisOp::Move(..) = a {
                        return Err(unsupported(
                            node,
                            format!("transpose {a:?} of an NCHW value"),
                        ));
                    }
                    self.reshape_from(node, x)
                } else {
                    Err(unsupported(
                        node,
                        format!("reshape of NCHW value {in_shape:?} (needs a real transpose; only NCHW→NHWC transposes before it are absorbed)"),
                    ))
                }
            }
        }
    }

    fn reshape(&mut self, node: &TypedNode) -> Result<(), ImportError> {
        let (x, l) = self.act(node, 0)?;
        if l != Layout::Same {
            return Err(unsupported(node, "reshape of an NCHW value"));
        }
        self.reshape_from(node, x)
    }

    fn reshape_from(&mut self, node: &TypedNode, x: TensorId) -> Result<(), ImportError> {
        let y = self.out_act(node, Layout::Same)?;
        let shape: Vec<i32> = self.g.tensors[y].shape.iter().map(|&d| d as i32).collect();
        let s = self.add_i32(format!("{}/shape", node.name), vec![shape.len()], &shape);
        self.push(OpKind::Reshape, vec![Some(x), Some(s)], y);
        Ok(())
    }

    fn pad(&mut self, node: &TypedNode, p: &Pad) -> Result<(), ImportError> {
        let (x, l) = self.act(node, 0)?;
        match &p.mode {
            PadMode::Constant(v) if f32_values(node, v)?.iter().all(|&e| e == 0.0) => {}
            other => {
                return Err(unsupported(
                    node,
                    format!("pad mode {other:?} (zero padding only)"),
                ))
            }
        }
        let rank = p.pads.len();
        let mut pads = vec![0i32; rank * 2];
        for (a, &(b, e)) in p.pads.iter().enumerate() {
            let o = l.axis(a);
            pads[2 * o] = b as i32;
            pads[2 * o + 1] = e as i32;
        }
        let pid = self.add_i32(format!("{}/paddings", node.name), vec![rank, 2], &pads);
        let y = self.out_act(node, l)?;
        self.push(OpKind::Pad, vec![Some(x), Some(pid)], y);
        Ok(())
    }

    fn pool(
        &mut self,
        node: &TypedNode,
        spec: &PoolSpec,
        max: bool,
        count_include_pad: bool,
    ) -> Result<(), ImportError> {
        let (x, l) = self.act(node, 0)?;
        match (spec.data_format, l) {
            (DataFormat::NCHW, Layout::Nchw) | (DataFormat::NHWC, Layout::Same) => {}
            (f, l) => {
                return Err(unsupported(
                    node,
                    format!("{f:?} pool on a value stored as {l:?}"),
                ))
            }
        }
        let shape = self.g.tensors[x].shape.clone();
        let (pad, explicit) =
            padding(spec, [shape[1], shape[2]]).map_err(|w| unsupported(node, w))?;
        // TFLite SAME pooling ignores padded cells; explicit zero padding is right for an
        // average that counts padded cells, and never for a max.
        let x = match explicit {
            None if pad == Padding::Same && !max && count_include_pad => {
                return Err(unsupported(
                    node,
                    "average pool counting padded cells with SAME padding",
                ))
            }
            None => x,
            Some(p) if !max && count_include_pad => self.explicit_pad(node, x, &shape, p)?,
            Some(_) => {
                return Err(unsupported(
                    node,
                    "explicit pool padding that is neither SAME nor VALID",
                ))
            }
        };
        let s = spec.strides();
        let opts = Pool2DOptions {
            padding: pad,
            stride_h: s[0],
            stride_w: s[1],
            filter_h: spec.kernel_shape[0],
            filter_w: spec.kernel_shape[1],
            activation: Activation::None,
        };
        let y = self.out_act(node, l)?;
        let kind = if max {
            OpKind::MaxPool2D(opts)
        } else {
            OpKind::AveragePool2D(opts)
        };
        self.push(kind, vec![Some(x)], y);
        Ok(())
    }

    /// `MatMul` / `Gemm` with constant weights: `[.., K] x [K, N]` → FULLY_CONNECTED.
    fn einsum(&mut self, node: &TypedNode, e: &EinSum) -> Result<(), ImportError> {
        if e.q_params.is_some() || node.inputs.len() != 2 {
            return Err(unsupported(node, "quantized or n-ary einsum"));
        }
        let expr = e.axes.to_string();
        let (x, l, w, swap) = match (self.input(node, 0)?, self.input(node, 1)?) {
            (Val::Act(x, l), Val::Const(w)) => (x, l, w, false),
            (Val::Const(w), Val::Act(x, l)) => (x, l, w, true),
            _ => {
                return Err(unsupported(
                    node,
                    format!("einsum {expr} needs one constant operand"),
                ))
            }
        };
        if l != Layout::Same {
            return Err(unsupported(node, "matmul of an NCHW value"));
        }
        let (ins, out) = expr
            .split_once("->")
            .ok_or_else(|| unsupported(node, format!("einsum {expr}")))?;
        let parts: Vec<&str> = ins.split(',').collect();
        let (xa, wa) = if swap {
            (parts[1], parts[0])
        } else {
            (parts[0], parts[1])
        };
        let (xa, wa): (Vec<char>, Vec<char>) = (xa.chars().collect(), wa.chars().collect());
        let oa: Vec<char> = out.chars().collect();
        // x [.., K], w 2-d over {K, N}, out [.., N]: K is the last axis of x, absent from out.
        let (Some(&k), 2) = (xa.last(), wa.len()) else {
            return Err(unsupported(node, format!("einsum {expr}")));
        };
        let Some(&n) = wa.iter().find(|&&c| c != k) else {
            return Err(unsupported(node, format!("einsum {expr}")));
        };
        if oa.contains(&k)
            || oa.last() != Some(&n)
            || !wa.contains(&k)
            || xa[..xa.len() - 1] != oa[..oa.len() - 1]
        {
            return Err(unsupported(node, format!("einsum {expr} is not x·W")));
        }
        let wv = f32_values(node, &w)?;
        let ws = w.shape();
        // FC weights are [N, K].
        let wt = if wa[0] == n {
            wv
        } else {
            permute(&wv, ws, &[1, 0]).0
        };
        let (kd, nd) = if wa[0] == n {
            (ws[1], ws[0])
        } else {
            (ws[0], ws[1])
        };
        let wid = self.add_f32(format!("{}/weights", node.name), vec![nd, kd], &wt);
        let zeros = vec![0.0; nd];
        let bid = self.add_f32(format!("{}/bias", node.name), vec![nd], &zeros);
        let y = self.out_act(node, Layout::Same)?;
        let keep = self.g.tensors[y].shape.len() != 2;
        self.push(
            OpKind::FullyConnected {
                activation: Activation::None,
                keep_num_dims: keep,
            },
            vec![Some(x), Some(wid), Some(bid)],
            y,
        );
        Ok(())
    }

    fn resize(
        &mut self,
        node: &TypedNode,
        r: &tract_onnx_opl::resize::Resize,
    ) -> Result<(), ImportError> {
        use tract_onnx::tract_core::ops::nn::{CoordTransformer, Interpolator};
        use tract_onnx_opl::resize::{CoordTransform, Nearest};
        let (x, l) = self.act(node, 0)?;
        let y = self.out_act(node, l)?;
        let ys = self.g.tensors[y].shape.clone();
        let xs = self.g.tensors[x].shape.clone();
        if ys.len() != 4 || ys[0] != xs[0] || ys[3] != xs[3] {
            return Err(unsupported(node, "resize of other than the spatial axes"));
        }
        let ct = match &r.coord_transformer {
            CoordTransform::Plain(c) => c.clone(),
            CoordTransform::TfCropAndResize => {
                return Err(unsupported(node, "tf_crop_and_resize coordinates"))
            }
        };
        let (align_corners, half_pixel_centers) = match (&r.interpolator, &ct) {
            (_, CoordTransformer::AlignCorners) => (true, false),
            (_, CoordTransformer::Asymmetric) => (false, false),
            (Interpolator::Linear, CoordTransformer::HalfPixel) => (false, true),
            (Interpolator::Nearest, CoordTransformer::TfHalfPixelForNn) => (false, true),
            (i, c) => {
                return Err(unsupported(
                    node,
                    format!("resize {i:?} with {c:?} coordinates"),
                ))
            }
        };
        let kind = match &r.interpolator {
            Interpolator::Linear => OpKind::ResizeBilinear {
                align_corners,
                half_pixel_centers,
            },
            Interpolator::Nearest => {
                // TFLite nearest rounds (align_corners / half-pixel) or floors (asymmetric).
                let ok = match (align_corners, half_pixel_centers) {
                    (false, false) => matches!(r.nearest, Nearest::Floor),
                    _ => matches!(r.nearest, Nearest::RoundPreferCeil),
                };
                if !ok {
                    return Err(unsupported(node, format!("nearest mode {:?}", r.nearest)));
                }
                OpKind::ResizeNearestNeighbor {
                    align_corners,
                    half_pixel_centers,
                }
            }
            other => return Err(unsupported(node, format!("{other:?} interpolation"))),
        };
        let size = self.add_i32(
            format!("{}/size", node.name),
            vec![2],
            &[ys[1] as i32, ys[2] as i32],
        );
        self.push(kind, vec![Some(x), Some(size)], y);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_nchw_to_nhwc() {
        // [1, 2, 1, 3] NCHW: c0 = 0 1 2, c1 = 3 4 5 → NHWC [1, 1, 3, 2].
        let v: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let (p, s) = permute(&v, &[1, 2, 1, 3], &[0, 2, 3, 1]);
        assert_eq!(s, vec![1, 1, 3, 2]);
        assert_eq!(p, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn same_padding_matches_tflite() {
        // 96 input, k3 s2: out 48, total pad 1 → (0, 1) (TF puts the extra after).
        assert_eq!(same_pads(96, 3, 2, 1), (0, 1));
        assert_eq!(same_pads(24, 3, 1, 1), (1, 1));
        assert_eq!(same_pads(24, 1, 1, 1), (0, 0));
    }
}
