#!/usr/bin/env python3
"""Single-op reference cases from LiteRT BUILTIN_REF for spotter's scalar kernels.

Builds one-operator .tflite models in memory (flatbuffers via the `tflite` schema package),
runs them with ai-edge-litert's reference resolver, and writes JSON cases to
tests/data/ops/<op>.json. The Rust unit tests in src/ops/*.rs rebuild the same graph in
spotter's IR, run the prepared kernel and require bit-identical outputs.

    python3 scripts/goldens/op_cases.py            # regenerate all
    SPOTTER_OP_CASES_SCALE=10 python3 ...          # 10x more cases (local stress run only)
"""
import json
import os
import random
import sys
import tempfile

import flatbuffers
import numpy as np
import tflite as T
from ai_edge_litert.interpreter import Interpreter, OpResolverType

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "ops")
NP = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8, "int32": np.int32,
      "int64": np.int64, "float16": np.float16}
TT = {"float32": T.TensorType.FLOAT32, "uint8": T.TensorType.UINT8,
      "int8": T.TensorType.INT8, "int32": T.TensorType.INT32, "int64": T.TensorType.INT64,
      "float16": T.TensorType.FLOAT16}
ACT = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
PAD = {"same": T.Padding.SAME, "valid": T.Padding.VALID}


def _vec(b, start, items, kind):
    start(b, len(items))
    for x in reversed(items):
        getattr(b, "Prepend" + kind)(x)
    return b.EndVector()


def build_model(op_name, options, tensors, inputs, outputs):
    """tensors: list of dict(name, shape, dtype, quant=None|dict(scales, zero_points, axis),
    data=None|list). Returns flatbuffer bytes."""
    b = flatbuffers.Builder(1024)
    # Buffers: 0 empty, then one per tensor (const data or empty).
    buf_offsets = []
    for t in [None] + tensors:
        data_vec = None
        if t is not None and t.get("data") is not None:
            raw = np.asarray(t["data"], dtype=NP[t["dtype"]]).tobytes()
            b.StartVector(1, len(raw), 16)
            for byte in reversed(raw):
                b.PrependUint8(byte)
            data_vec = b.EndVector()
        T.BufferStart(b)
        if data_vec is not None:
            T.BufferAddData(b, data_vec)
        buf_offsets.append(T.BufferEnd(b))
    tensor_offsets = []
    for i, t in enumerate(tensors):
        name = b.CreateString(t["name"])
        shape = _vec(b, T.TensorStartShapeVector, t["shape"], "Int32")
        q = None
        if t.get("quant"):
            qd = t["quant"]
            sc = _vec(b, T.QuantizationParametersStartScaleVector, qd["scales"], "Float32")
            zp = _vec(b, T.QuantizationParametersStartZeroPointVector, qd["zero_points"], "Int64")
            T.QuantizationParametersStart(b)
            T.QuantizationParametersAddScale(b, sc)
            T.QuantizationParametersAddZeroPoint(b, zp)
            T.QuantizationParametersAddQuantizedDimension(b, qd.get("axis", 0))
            q = T.QuantizationParametersEnd(b)
        T.TensorStart(b)
        T.TensorAddShape(b, shape)
        T.TensorAddType(b, TT[t["dtype"]])
        T.TensorAddBuffer(b, i + 1)
        T.TensorAddName(b, name)
        if q is not None:
            T.TensorAddQuantization(b, q)
        tensor_offsets.append(T.TensorEnd(b))

    code, opt_type, opt = builtin_options(b, op_name, options)
    op_inputs = _vec(b, T.OperatorStartInputsVector, inputs, "Int32")
    op_outputs = _vec(b, T.OperatorStartOutputsVector, outputs, "Int32")
    T.OperatorStart(b)
    T.OperatorAddOpcodeIndex(b, 0)
    T.OperatorAddInputs(b, op_inputs)
    T.OperatorAddOutputs(b, op_outputs)
    T.OperatorAddBuiltinOptionsType(b, opt_type)
    if opt is not None:
        T.OperatorAddBuiltinOptions(b, opt)
    operator = T.OperatorEnd(b)

    tvec = _vec(b, T.SubGraphStartTensorsVector, tensor_offsets, "UOffsetTRelative")
    graph_inputs = [i for i in inputs if i >= 0 and tensors[i].get("data") is None]
    sg_in = _vec(b, T.SubGraphStartInputsVector, graph_inputs, "Int32")
    sg_out = _vec(b, T.SubGraphStartOutputsVector, outputs, "Int32")
    ops = _vec(b, T.SubGraphStartOperatorsVector, [operator], "UOffsetTRelative")
    T.SubGraphStart(b)
    T.SubGraphAddTensors(b, tvec)
    T.SubGraphAddInputs(b, sg_in)
    T.SubGraphAddOutputs(b, sg_out)
    T.SubGraphAddOperators(b, ops)
    sg = T.SubGraphEnd(b)

    T.OperatorCodeStart(b)
    T.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    T.OperatorCodeAddBuiltinCode(b, code)
    T.OperatorCodeAddVersion(b, 1)
    oc = T.OperatorCodeEnd(b)
    codes = _vec(b, T.ModelStartOperatorCodesVector, [oc], "UOffsetTRelative")
    sgs = _vec(b, T.ModelStartSubgraphsVector, [sg], "UOffsetTRelative")
    bufs = _vec(b, T.ModelStartBuffersVector, buf_offsets, "UOffsetTRelative")
    desc = b.CreateString("spotter op case")
    T.ModelStart(b)
    T.ModelAddVersion(b, 3)
    T.ModelAddOperatorCodes(b, codes)
    T.ModelAddSubgraphs(b, sgs)
    T.ModelAddBuffers(b, bufs)
    T.ModelAddDescription(b, desc)
    b.Finish(T.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def builtin_options(b, op_name, o):
    act = ACT[o.get("activation", "none")]
    if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        if op_name == "CONV_2D":
            T.Conv2DOptionsStart(b)
            T.Conv2DOptionsAddPadding(b, PAD[o["padding"]])
            T.Conv2DOptionsAddStrideH(b, o["stride"][0])
            T.Conv2DOptionsAddStrideW(b, o["stride"][1])
            T.Conv2DOptionsAddDilationHFactor(b, o["dilation"][0])
            T.Conv2DOptionsAddDilationWFactor(b, o["dilation"][1])
            T.Conv2DOptionsAddFusedActivationFunction(b, act)
            return T.BuiltinOperator.CONV_2D, T.BuiltinOptions.Conv2DOptions, T.Conv2DOptionsEnd(b)
        T.DepthwiseConv2DOptionsStart(b)
        T.DepthwiseConv2DOptionsAddPadding(b, PAD[o["padding"]])
        T.DepthwiseConv2DOptionsAddStrideH(b, o["stride"][0])
        T.DepthwiseConv2DOptionsAddStrideW(b, o["stride"][1])
        T.DepthwiseConv2DOptionsAddDilationHFactor(b, o["dilation"][0])
        T.DepthwiseConv2DOptionsAddDilationWFactor(b, o["dilation"][1])
        T.DepthwiseConv2DOptionsAddDepthMultiplier(b, o["depth_multiplier"])
        T.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
        return (T.BuiltinOperator.DEPTHWISE_CONV_2D, T.BuiltinOptions.DepthwiseConv2DOptions,
                T.DepthwiseConv2DOptionsEnd(b))
    if op_name == "FULLY_CONNECTED":
        T.FullyConnectedOptionsStart(b)
        T.FullyConnectedOptionsAddFusedActivationFunction(b, act)
        T.FullyConnectedOptionsAddKeepNumDims(b, o["keep_num_dims"])
        return (T.BuiltinOperator.FULLY_CONNECTED, T.BuiltinOptions.FullyConnectedOptions,
                T.FullyConnectedOptionsEnd(b))
    if op_name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        T.Pool2DOptionsStart(b)
        T.Pool2DOptionsAddPadding(b, PAD[o["padding"]])
        T.Pool2DOptionsAddStrideH(b, o["stride"][0])
        T.Pool2DOptionsAddStrideW(b, o["stride"][1])
        T.Pool2DOptionsAddFilterHeight(b, o["filter"][0])
        T.Pool2DOptionsAddFilterWidth(b, o["filter"][1])
        T.Pool2DOptionsAddFusedActivationFunction(b, act)
        code = getattr(T.BuiltinOperator, op_name)
        return code, T.BuiltinOptions.Pool2DOptions, T.Pool2DOptionsEnd(b)
    if op_name == "MEAN":
        T.ReducerOptionsStart(b)
        T.ReducerOptionsAddKeepDims(b, o["keep_dims"])
        return T.BuiltinOperator.MEAN, T.BuiltinOptions.ReducerOptions, T.ReducerOptionsEnd(b)
    if op_name in ("ADD", "MUL"):
        if op_name == "ADD":
            T.AddOptionsStart(b)
            T.AddOptionsAddFusedActivationFunction(b, act)
            return T.BuiltinOperator.ADD, T.BuiltinOptions.AddOptions, T.AddOptionsEnd(b)
        T.MulOptionsStart(b)
        T.MulOptionsAddFusedActivationFunction(b, act)
        return T.BuiltinOperator.MUL, T.BuiltinOptions.MulOptions, T.MulOptionsEnd(b)
    if op_name == "CONCATENATION":
        T.ConcatenationOptionsStart(b)
        T.ConcatenationOptionsAddAxis(b, o["axis"])
        T.ConcatenationOptionsAddFusedActivationFunction(b, act)
        return (T.BuiltinOperator.CONCATENATION, T.BuiltinOptions.ConcatenationOptions,
                T.ConcatenationOptionsEnd(b))
    if op_name == "RESHAPE":
        ns = _vec(b, T.ReshapeOptionsStartNewShapeVector, o["new_shape"], "Int32")
        T.ReshapeOptionsStart(b)
        T.ReshapeOptionsAddNewShape(b, ns)
        return T.BuiltinOperator.RESHAPE, T.BuiltinOptions.ReshapeOptions, T.ReshapeOptionsEnd(b)
    if op_name == "PAD":
        T.PadOptionsStart(b)
        return T.BuiltinOperator.PAD, T.BuiltinOptions.PadOptions, T.PadOptionsEnd(b)
    if op_name == "DEPTH_TO_SPACE":
        T.DepthToSpaceOptionsStart(b)
        T.DepthToSpaceOptionsAddBlockSize(b, o["block_size"])
        return (T.BuiltinOperator.DEPTH_TO_SPACE, T.BuiltinOptions.DepthToSpaceOptions,
                T.DepthToSpaceOptionsEnd(b))
    if op_name == "SOFTMAX":
        T.SoftmaxOptionsStart(b)
        T.SoftmaxOptionsAddBeta(b, o["beta"])
        return T.BuiltinOperator.SOFTMAX, T.BuiltinOptions.SoftmaxOptions, T.SoftmaxOptionsEnd(b)
    if op_name == "RESIZE_BILINEAR":
        T.ResizeBilinearOptionsStart(b)
        T.ResizeBilinearOptionsAddAlignCorners(b, o["align_corners"])
        T.ResizeBilinearOptionsAddHalfPixelCenters(b, o["half_pixel_centers"])
        return (T.BuiltinOperator.RESIZE_BILINEAR, T.BuiltinOptions.ResizeBilinearOptions,
                T.ResizeBilinearOptionsEnd(b))
    if op_name == "RESIZE_NEAREST_NEIGHBOR":
        T.ResizeNearestNeighborOptionsStart(b)
        T.ResizeNearestNeighborOptionsAddAlignCorners(b, o["align_corners"])
        T.ResizeNearestNeighborOptionsAddHalfPixelCenters(b, o["half_pixel_centers"])
        return (T.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR,
                T.BuiltinOptions.ResizeNearestNeighborOptions,
                T.ResizeNearestNeighborOptionsEnd(b))
    if op_name in ("RELU", "RELU6", "PRELU", "LOGISTIC", "QUANTIZE", "DEQUANTIZE"):
        return getattr(T.BuiltinOperator, op_name), T.BuiltinOptions.NONE, None
    raise ValueError(op_name)


def run_litert(model_bytes, input0):
    """input0: the value of the first graph input (None when every op input is constant)."""
    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as f:
        f.write(model_bytes)
        path = f.name
    try:
        it = Interpreter(model_path=path, num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        if input0 is not None:
            d = it.get_input_details()[0]
            it.set_tensor(d["index"], input0)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])
    finally:
        os.unlink(path)


def rand_tensor(rng, dtype, shape, lo=None, hi=None):
    n = int(np.prod(shape))
    if dtype in ("float32", "float16"):
        return [round(rng.uniform(-2, 2), 4) for _ in range(n)]
    lo = {"uint8": 0, "int8": -128, "int32": -2000}[dtype] if lo is None else lo
    hi = {"uint8": 255, "int8": 127, "int32": 2000}[dtype] if hi is None else hi
    return [rng.randint(lo, hi) for _ in range(n)]


def qparams(rng, dtype):
    if dtype == "float32":
        return None
    scale = float(np.float32(rng.uniform(0.005, 0.05)))
    zp = rng.randint(100, 156) if dtype == "uint8" else rng.randint(-20, 20)
    return {"scales": [scale], "zero_points": [zp], "axis": 0}


def conv_like(rng, op_name, dtype, per_channel):
    n = rng.choice([1, 2])
    ih, iw = rng.randint(3, 8), rng.randint(3, 8)
    ic = rng.randint(1, 4)
    kh, kw = rng.randint(1, 3), rng.randint(1, 3)
    stride = [rng.randint(1, 2), rng.randint(1, 2)]
    dilation = [rng.randint(1, 2), rng.randint(1, 2)]
    padding = rng.choice(["same", "valid"])
    act = rng.choice(list(ACT))
    if op_name == "CONV_2D":
        oc = rng.randint(1, 4)
        fshape, axis, mult = [oc, kh, kw, ic], 0, 1
    else:
        mult = rng.randint(1, 2)
        oc = ic * mult
        fshape, axis = [1, kh, kw, oc], 3

    def out_size(i, k, s, d):
        e = (k - 1) * d + 1
        return (i + s - 1) // s if padding == "same" else (i + s - e) // s
    oh, ow = out_size(ih, kh, stride[0], dilation[0]), out_size(iw, kw, stride[1], dilation[1])
    if oh <= 0 or ow <= 0:
        return None
    iq, oq = qparams(rng, dtype), qparams(rng, dtype)
    if dtype == "float32":
        fq, bq, bdt = None, None, "float32"
    else:
        if per_channel:
            scales = [float(np.float32(rng.uniform(0.002, 0.02))) for _ in range(oc)]
            fq = {"scales": scales, "zero_points": [0] * oc, "axis": axis}
        else:
            fq = qparams(rng, dtype)
            if dtype == "int8":
                fq["zero_points"] = [0]
        bq = {"scales": [float(np.float32(iq["scales"][0] * s)) for s in fq["scales"]],
              "zero_points": [0] * len(fq["scales"]), "axis": 0}
        bdt = "int32"
    tensors = [
        {"name": "input", "shape": [n, ih, iw, ic], "dtype": dtype, "quant": iq},
        {"name": "filter", "shape": fshape, "dtype": dtype, "quant": fq,
         "data": rand_tensor(rng, dtype, fshape)},
        {"name": "bias", "shape": [oc], "dtype": bdt, "quant": bq,
         "data": rand_tensor(rng, bdt, [oc])},
        {"name": "output", "shape": [n, oh, ow, oc], "dtype": dtype, "quant": oq},
    ]
    opts = {"padding": padding, "stride": stride, "dilation": dilation, "activation": act,
            "depth_multiplier": mult}
    return opts, tensors, [0, 1, 2], [3]


def fully_connected(rng, dtype, per_channel):
    keep = rng.choice([True, False])
    shape = rng.choice([[2, 5], [1, 3, 4], [2, 2, 3]])
    idepth, odepth = shape[-1], rng.randint(1, 5)
    batches = int(np.prod(shape)) // idepth
    oshape = shape[:-1] + [odepth] if keep else [batches, odepth]
    iq, oq = qparams(rng, dtype), qparams(rng, dtype)
    if dtype == "float32":
        fq, bq, bdt = None, None, "float32"
    else:
        if per_channel:
            scales = [float(np.float32(rng.uniform(0.002, 0.02))) for _ in range(odepth)]
            fq = {"scales": scales, "zero_points": [0] * odepth, "axis": 0}
        else:
            fq = qparams(rng, dtype)
        bq = {"scales": [float(np.float32(iq["scales"][0] * s)) for s in fq["scales"]],
              "zero_points": [0] * len(fq["scales"]), "axis": 0}
        bdt = "int32"
    tensors = [
        {"name": "input", "shape": shape, "dtype": dtype, "quant": iq},
        {"name": "weights", "shape": [odepth, idepth], "dtype": dtype, "quant": fq,
         "data": rand_tensor(rng, dtype, [odepth, idepth])},
        {"name": "bias", "shape": [odepth], "dtype": bdt, "quant": bq,
         "data": rand_tensor(rng, bdt, [odepth])},
        {"name": "output", "shape": oshape, "dtype": dtype, "quant": oq},
    ]
    return ({"keep_num_dims": keep, "activation": rng.choice(list(ACT))}, tensors, [0, 1, 2], [3])


def pool(rng, dtype):
    n, ih, iw, c = rng.choice([1, 2]), rng.randint(2, 7), rng.randint(2, 7), rng.randint(1, 3)
    k = [rng.randint(1, 3), rng.randint(1, 3)]
    stride = [rng.randint(1, 2), rng.randint(1, 2)]
    padding = rng.choice(["same", "valid"])

    def out_size(i, kk, s):
        return (i + s - 1) // s if padding == "same" else (i + s - kk) // s
    oh, ow = out_size(ih, k[0], stride[0]), out_size(iw, k[1], stride[1])
    if oh <= 0 or ow <= 0:
        return None
    q = qparams(rng, dtype)
    tensors = [
        {"name": "input", "shape": [n, ih, iw, c], "dtype": dtype, "quant": q},
        {"name": "output", "shape": [n, oh, ow, c], "dtype": dtype, "quant": q},
    ]
    opts = {"padding": padding, "stride": stride, "filter": k,
            "activation": rng.choice(list(ACT))}
    return opts, tensors, [0], [1]


def mean(rng, dtype, same_quant):
    shape = rng.choice([[1, 4, 3, 2], [2, 3, 5], [3, 4], [1, 7, 7, 3]])
    rank = len(shape)
    k = rng.randint(1, rank)
    axes = rng.sample(range(rank), k)
    axes = [a - rank if rng.random() < 0.3 else a for a in axes]
    keep = rng.choice([True, False])
    norm = sorted(set(a % rank for a in axes))
    oshape = [1 if d in norm else s for d, s in enumerate(shape)] if keep else \
        [s for d, s in enumerate(shape) if d not in norm]
    iq = qparams(rng, dtype)
    oq = iq if same_quant else qparams(rng, dtype)
    tensors = [
        {"name": "input", "shape": shape, "dtype": dtype, "quant": iq},
        {"name": "axis", "shape": [len(axes)], "dtype": "int32", "quant": None, "data": axes},
        {"name": "output", "shape": oshape, "dtype": dtype, "quant": oq},
    ]
    return {"keep_dims": keep}, tensors, [0, 1], [2]



def qp(scale, zp):
    return {"scales": [float(np.float32(scale))], "zero_points": [zp], "axis": 0}


def rand_q(rng, dtype, lo=0.005, hi=0.05):
    if dtype == "float32":
        return None
    zp = rng.randint(100, 156) if dtype == "uint8" else rng.randint(-20, 20)
    return qp(rng.uniform(lo, hi), zp)


BCAST = [([1, 3, 4, 2], [2]), ([1, 3, 4, 2], [1, 1, 1, 2]), ([2, 1, 3], [1, 4, 1]),
         ([4, 1], [3]), ([1, 2, 3, 4], [1]), ([3], [2, 3]), ([2, 3, 1, 2], [3, 4, 1]),
         ([2, 1, 3, 1, 2], [1, 2, 1, 2, 1]), ([1, 2, 1, 2, 1, 3], [2, 1, 2, 1, 1])]
SAME = [[2, 3, 4], [1, 4, 4, 3], [5], [2, 2, 2, 2], [3, 7]]


def bshape(a, b):
    r = max(len(a), len(b))
    a, b = [1] * (r - len(a)) + a, [1] * (r - len(b)) + b
    return [max(x, y) for x, y in zip(a, b)]


def binary(rng, op, dtype, broadcast):
    s1, s2 = rng.choice(BCAST) if broadcast else (rng.choice(SAME),) * 2
    if broadcast and rng.random() < 0.5:
        s1, s2 = s2, s1
    q1, q2 = rand_q(rng, dtype), rand_q(rng, dtype)
    oq = None
    if dtype != "float32":
        a, b = q1["scales"][0], q2["scales"][0]
        # MUL: output multipliers both below and above 1.
        so = (a * b * rng.choice([128, 128, 4]) * rng.uniform(0.3, 2.0)) if op == "MUL" else \
            (a + b) * rng.uniform(0.6, 1.5)
        oq = qp(so, rand_q(rng, dtype)["zero_points"][0])
    tensors = [
        {"name": "x", "shape": s1, "dtype": dtype, "quant": q1},
        {"name": "y", "shape": s2, "dtype": dtype, "quant": q2,
         "data": rand_tensor(rng, dtype, s2)},
        {"name": "out", "shape": bshape(s1, s2), "dtype": dtype, "quant": oq},
    ]
    return {"activation": rng.choice(list(ACT))}, tensors, [0, 1], [2]


def concat(rng, dtype, same_quant):
    rank = rng.randint(1, 4)
    base = [rng.randint(1, 4) for _ in range(rank)]
    axis = rng.randrange(rank)
    n = rng.randint(2, 3)
    oq = rand_q(rng, dtype)
    tensors, total = [], 0
    for i in range(n):
        sh = list(base)
        sh[axis] = rng.randint(1, 3)
        total += sh[axis]
        q = oq if same_quant or dtype != "uint8" else rand_q(rng, dtype, 0.005, 0.08)
        t = {"name": "in%d" % i, "shape": sh, "dtype": dtype, "quant": q}
        if i > 0:
            t["data"] = rand_tensor(rng, dtype, sh)
        tensors.append(t)
    oshape = list(base)
    oshape[axis] = total
    tensors.append({"name": "out", "shape": oshape, "dtype": dtype, "quant": oq})
    file_axis = axis - rank if rng.random() < 0.3 else axis
    return ({"axis": file_axis, "activation": "none"}, tensors, list(range(n)), [n])


def reshape(rng, dtype):
    shape, new = rng.choice([([2, 3, 4], [6, 4]), ([1, 4, 4, 3], [1, 48]), ([12], [3, 2, 2]),
                             ([2, 6], [1, 2, 3, 2])])
    q = rand_q(rng, dtype)
    tensors = [
        {"name": "x", "shape": shape, "dtype": dtype, "quant": q},
        {"name": "shape", "shape": [len(new)], "dtype": "int32", "quant": None, "data": new},
        {"name": "out", "shape": new, "dtype": dtype, "quant": q},
    ]
    return {"new_shape": new}, tensors, [0, 1], [2]


def pad(rng, dtype, pdtype):
    rank = rng.randint(1, 4)
    shape = [rng.randint(1, 4) for _ in range(rank)]
    pads = [[rng.randint(0, 2), rng.randint(0, 2)] for _ in range(rank)]
    q = rand_q(rng, dtype)
    # LiteRT pads with the output zero point and copies raw values, even if quantization differs.
    oq = rand_q(rng, dtype) if dtype != "float32" and rng.random() < 0.3 else q
    tensors = [
        {"name": "x", "shape": shape, "dtype": dtype, "quant": q},
        {"name": "paddings", "shape": [rank, 2], "dtype": pdtype, "quant": None,
         "data": [v for p in pads for v in p]},
        {"name": "out", "shape": [s + a + b for s, (a, b) in zip(shape, pads)],
         "dtype": dtype, "quant": oq},
    ]
    return {}, tensors, [0, 1], [2]


def depth_to_space(rng, dtype):
    bs = rng.choice([2, 3])
    n, h, w, c = rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 2)
    q = rand_q(rng, dtype)
    tensors = [
        {"name": "x", "shape": [n, h, w, c * bs * bs], "dtype": dtype, "quant": q},
        {"name": "out", "shape": [n, h * bs, w * bs, c], "dtype": dtype, "quant": q},
    ]
    return {"block_size": bs}, tensors, [0], [1]


def unary(rng, op, dtype):
    shape = rng.choice([[2, 3, 4], [1, 5, 5, 2], [17]])
    iq = rand_q(rng, dtype, 0.01, 0.1)
    if op == "LOGISTIC" and dtype != "float32":
        oq = qp(1.0 / 256, 0 if dtype == "uint8" else -128)
    else:
        oq = rand_q(rng, dtype, 0.005, 0.05)
    tensors = [
        {"name": "x", "shape": shape, "dtype": dtype, "quant": iq},
        {"name": "out", "shape": shape, "dtype": dtype, "quant": oq},
    ]
    return {}, tensors, [0], [1]


def prelu(rng, dtype):
    shape = [1, rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 3)]
    ashape = rng.choice([shape[3:], [1, 1, shape[3]], shape[1:]])
    aq = rand_q(rng, dtype, 0.002, 0.01)
    tensors = [
        {"name": "x", "shape": shape, "dtype": dtype, "quant": rand_q(rng, dtype)},
        {"name": "alpha", "shape": ashape, "dtype": dtype, "quant": aq,
         "data": rand_tensor(rng, dtype, ashape)},
        {"name": "out", "shape": shape, "dtype": dtype, "quant": rand_q(rng, dtype)},
    ]
    return {}, tensors, [0, 1], [2]


def softmax(rng, dtype):
    shape = rng.choice([[1, 10], [2, 5], [1, 2, 3, 7], [3], [4, 1]])
    beta = rng.choice([1.0, 1.0, 0.5, 2.0, 0.3]) if dtype == "float32" else \
        rng.choice([1.0, 1.0, 0.7, 2.5])
    oq = None if dtype == "float32" else qp(1.0 / 256, 0 if dtype == "uint8" else -128)
    if dtype == "uint8" and rng.random() < 0.3:
        oq = rand_q(rng, dtype)  # accepted, and ignored by the reference kernel
    # Large input scales push differences past diff_min (those outputs are exactly qmin).
    iq = rand_q(rng, dtype, 0.01, rng.choice([0.2, 0.2, 1.0]))
    tensors = [
        {"name": "x", "shape": shape, "dtype": dtype, "quant": iq},
        {"name": "out", "shape": shape, "dtype": dtype, "quant": oq},
    ]
    return {"beta": beta}, tensors, [0], [1]


# Rows where the float lookup-table softmax (the optimized kernel) and the fixed-point
# reference kernel differ by one: they pin which one LiteRT's BUILTIN_REF runs.
SOFTMAX_PINNED = [
    ("uint8", 0.04896562919020653, 0, [110, 140, 71, 162, 96, 17, 245, 99]),
    ("int8", 0.03120141476392746, 0, [14, -85, -99, 46, -26, -91, 123, -102]),
    ("int8", 0.10550705343484879, 0, [-95, -67, -5, -113, 58, -126, -101, 84]),
    # uint8 output quantization is ignored: results as if (1/256, 0).
    ("uint8", 0.1, 128, [128, 130, 140, 120, 128, 129]),
]


def softmax_pinned(i):
    dtype, scale, zp, row = SOFTMAX_PINNED[i]
    oq = qp(1.0 / 256, 0 if dtype == "uint8" else -128)
    if i == 3:
        oq = qp(1.0 / 128, 10)
    tensors = [
        {"name": "x", "shape": [1, len(row)], "dtype": dtype, "quant": qp(scale, zp)},
        {"name": "out", "shape": [1, len(row)], "dtype": dtype, "quant": oq},
    ]
    return {"beta": 1.0}, tensors, [0], [1], row


def resize(rng, op, dtype, flags):
    align, half = flags
    if rng.random() < 0.25:  # one wide row: many source positions, float rounding of scales
        n, h, w, c = 1, 1, rng.randint(20, 90), 1
        oh, ow = rng.randint(1, 2), rng.randint(7, 130)
    else:
        n, h, w, c = rng.randint(1, 2), rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 3)
        oh, ow = rng.randint(1, 11), rng.randint(1, 11)
    q = rand_q(rng, dtype)
    # LiteRT copies/interpolates raw values even if the output quantization differs.
    oq = rand_q(rng, dtype) if dtype != "float32" and rng.random() < 0.2 else q
    tensors = [
        {"name": "x", "shape": [n, h, w, c], "dtype": dtype, "quant": q},
        {"name": "size", "shape": [2], "dtype": "int32", "quant": None, "data": [oh, ow]},
        {"name": "out", "shape": [n, oh, ow, c], "dtype": dtype, "quant": oq},
    ]
    return ({"align_corners": align, "half_pixel_centers": half}, tensors, [0, 1], [2])


def quantize(rng, src, dst, ties=False):
    shape = rng.choice([[2, 3, 4], [17], [1, 4, 4, 2]])
    iq = None if src == "float32" else rand_q(rng, src, 0.01, 0.1)
    oq = rand_q(rng, dst, 0.01, 0.1)
    tensors = [
        {"name": "x", "shape": shape, "dtype": src, "quant": iq},
        {"name": "out", "shape": shape, "dtype": dst, "quant": oq},
    ]
    if ties:  # x / scale lands exactly on .5: pins round-half-away-from-zero
        oq["scales"] = [0.25]
        n = int(np.prod(shape))
        return {}, tensors, [0], [1], [0.125 * rng.randint(-60, 60) for _ in range(n)]
    return {}, tensors, [0], [1]


def dequantize(rng, src, per_axis):
    shape = rng.choice([[2, 3, 4], [17], [1, 4, 4, 2]])
    if src == "float16":
        iq = None
    elif per_axis:
        axis = rng.randrange(len(shape))
        k = shape[axis]
        iq = {"scales": [float(np.float32(rng.uniform(0.002, 0.05))) for _ in range(k)],
              "zero_points": [0] * k, "axis": axis}
    else:
        iq = rand_q(rng, src, 0.01, 0.1)
    tensors = [
        {"name": "x", "shape": shape, "dtype": src, "quant": iq},
        {"name": "out", "shape": shape, "dtype": "float32", "quant": None},
    ]
    if per_axis:
        tensors[0]["data"] = rand_tensor(rng, src, shape)
    return {}, tensors, [0], [1]


Q8 = ("float32", "uint8", "int8")
RESIZE_FLAGS = [(False, False), (True, False), (False, True)]
# file -> [(op name, count, generator(rng) -> spec or None)]
PLANS = {
    "add": [("ADD", 8, lambda r, d=d, bc=bc: binary(r, "ADD", d, bc))
            for d in Q8 for bc in (False, True)],
    "mul": [("MUL", 8, lambda r, d=d, bc=bc: binary(r, "MUL", d, bc))
            for d in Q8 for bc in (False, True)],
    "concatenation": [("CONCATENATION", 8, lambda r, d=d, sq=sq: concat(r, d, sq))
                      for d, sq in [("float32", True), ("uint8", True), ("uint8", False),
                                    ("int8", True)]],
    "reshape": [("RESHAPE", 3, lambda r, d=d: reshape(r, d)) for d in Q8],
    "pad": [("PAD", 6, lambda r, d=d, p=p: pad(r, d, p)) for d in Q8
            for p in ("int32", "int64")],
    "depth_to_space": [("DEPTH_TO_SPACE", 4, lambda r, d=d: depth_to_space(r, d)) for d in Q8],
    "relu": [(op, 8, lambda r, op=op, d=d: unary(r, op, d))
             for op in ("RELU", "RELU6") for d in Q8],
    "prelu": [("PRELU", 10, lambda r, d=d: prelu(r, d)) for d in Q8],
    "logistic": [("LOGISTIC", 8, lambda r, d=d: unary(r, "LOGISTIC", d)) for d in Q8],
    "softmax": [("SOFTMAX", 10, lambda r, d=d: softmax(r, d)) for d in Q8]
    + [("SOFTMAX", 1, lambda r, i=i: softmax_pinned(i)) for i in range(len(SOFTMAX_PINNED))],
    "resize": [(op, 6, lambda r, op=op, d=d, f=f: resize(r, op, d, f))
               for op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR") for d in Q8
               for f in RESIZE_FLAGS]
    # Nearest neighbor also accepts align_corners together with half_pixel_centers.
    + [("RESIZE_NEAREST_NEIGHBOR", 3, lambda r, d=d: resize(r, "RESIZE_NEAREST_NEIGHBOR", d,
                                                           (True, True))) for d in Q8],
    "quantize": [("QUANTIZE", 6, lambda r, s=s, d=d: quantize(r, s, d))
                 for s, d in [("float32", "uint8"), ("float32", "int8"), ("uint8", "int8"),
                              ("int8", "uint8"), ("uint8", "uint8"), ("int8", "int8")]]
    + [("QUANTIZE", 2, lambda r, d=d: quantize(r, "float32", d, ties=True))
       for d in ("uint8", "int8")]
    + [("DEQUANTIZE", 6, lambda r, s=s, pa=pa: dequantize(r, s, pa))
       for s, pa in [("uint8", False), ("int8", False), ("float16", False), ("int8", True)]],
}


def legacy_plans():
    return {
        "conv2d": [("CONV_2D", d, pc) for d, pc in
                   [("float32", False), ("uint8", False), ("int8", False), ("int8", True)]],
        "depthwise": [("DEPTHWISE_CONV_2D", d, pc) for d, pc in
                      [("float32", False), ("uint8", False), ("int8", False), ("int8", True)]],
        "fully_connected": [("FULLY_CONNECTED", d, pc) for d, pc in
                            [("float32", False), ("uint8", False), ("int8", False),
                             ("int8", True)]],
        "pool": [(op, d, False) for op in ("MAX_POOL_2D", "AVERAGE_POOL_2D")
                 for d in ("float32", "uint8", "int8")],
        "mean": [("MEAN", d, same) for d in ("float32", "uint8", "int8") for same in (True, False)],
    }


def make_case(rng, op_name, spec):
    """spec: (options, tensors, inputs, outputs[, values of the non-constant input])."""
    opts, tensors, inputs, outputs = spec[:4]
    live = [i for i in inputs if tensors[i].get("data") is None]
    assert len(live) <= 1, "one non-constant input at most"
    x = None
    if len(spec) > 4:
        t = tensors[live[0]]
        x = np.asarray(spec[4], dtype=NP[t["dtype"]]).reshape(t["shape"])
    elif live:
        t = tensors[live[0]]
        x = np.asarray(rand_tensor(rng, t["dtype"], t["shape"]),
                       dtype=NP[t["dtype"]]).reshape(t["shape"])
    model = build_model(op_name, opts, tensors, inputs, outputs)
    y = run_litert(model, x)
    return {"op": op_name, "options": opts, "tensors": tensors, "inputs": inputs,
            "outputs": outputs, "input0": None if x is None else x.flatten().tolist(),
            "expected": y.flatten().tolist()}


def write(fname, cases):
    with open(os.path.join(OUT_DIR, fname + ".json"), "w") as f:
        json.dump({"generator": "scripts/goldens/op_cases.py",
                   "litert": "ai-edge-litert 2.3.0 BUILTIN_REF", "cases": cases}, f)
    print(fname, len(cases))


def main():
    """Arguments: file names to regenerate (default: all). The legacy files share one random
    stream (kept as first generated); every other file has its own seeded stream."""
    seed = int(os.environ.get("SPOTTER_OP_CASES_SEED", "20240601"))
    scale = int(os.environ.get("SPOTTER_OP_CASES_SCALE", "1"))
    only = set(sys.argv[1:])
    os.makedirs(OUT_DIR, exist_ok=True)
    legacy = legacy_plans()
    if not only or only & set(legacy):
        rng = random.Random(seed)
        for fname, plan in legacy.items():
            cases = []
            for op_name, dtype, flag in plan:
                made = 0
                while made < scale * (30 if op_name == "FULLY_CONNECTED" else 12):
                    if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                        spec = conv_like(rng, op_name, dtype, flag)
                    elif op_name == "FULLY_CONNECTED":
                        spec = fully_connected(rng, dtype, flag)
                    elif op_name == "MEAN":
                        spec = mean(rng, dtype, flag)
                    else:
                        spec = pool(rng, dtype)
                    if spec is None:
                        continue
                    cases.append(make_case(rng, op_name, spec))
                    made += 1
            if not only or fname in only:
                write(fname, cases)
    for fname, plan in PLANS.items():
        if only and fname not in only:
            continue
        rng = random.Random("%d:%s" % (seed, fname))
        cases = []
        for op_name, count, gen in plan:
            made = 0
            while made < scale * count:
                spec = gen(rng)
                if spec is None:
                    continue
                cases.append(make_case(rng, op_name, spec))
                made += 1
        write(fname, cases)


if __name__ == "__main__":
    main()
