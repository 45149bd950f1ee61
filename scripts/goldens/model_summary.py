"""Human-readable op-by-op summary of a .tflite model (parsed from the flatbuffer).

Usage: python3 model_summary.py MODEL.tflite [OUT.txt]
"""
from __future__ import annotations

import hashlib
import inspect
import sys
from collections import Counter

import numpy as np
import tflite
from flatbuffers import flexbuffers

_TENSOR_TYPES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_OPTION_NAMES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_PADDING = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_ACT = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}


def _f(x) -> str:
    """Exact text of a float32 value (shortest repr of the widened double)."""
    return repr(float(np.float32(x)))


def op_name(model, op) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    b = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if b == tflite.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + code.CustomCode().decode()
    return tflite.opcode2name(b)


def builtin_options(op) -> dict:
    t = op.BuiltinOptionsType()
    if t == 0:
        return {}
    name = _OPTION_NAMES.get(t)
    cls = getattr(tflite, name, None)
    tab = op.BuiltinOptions()
    if cls is None or tab is None:
        return {"type": name}
    o = cls()
    o.Init(tab.Bytes, tab.Pos)
    out = {}
    for meth, fn in inspect.getmembers(cls, inspect.isfunction):
        if meth.startswith("_") or meth in ("Init",) or meth.endswith(("IsNone", "Length", "AsNumpy")):
            continue
        if len(inspect.signature(fn).parameters) != 1:
            continue
        try:
            v = getattr(o, meth)()
        except Exception:  # noqa: BLE001
            continue
        if meth == "Padding":
            v = _PADDING.get(v, v)
        elif meth == "FusedActivationFunction":
            v = _ACT.get(v, v)
        elif hasattr(o, meth + "AsNumpy"):
            v = getattr(o, meth + "AsNumpy")()
            v = v.tolist() if isinstance(v, np.ndarray) else v
        out[meth] = v
    return out


def custom_options(op):
    if op.CustomOptionsIsNone() or op.CustomOptionsLength() == 0:
        return None
    buf = op.CustomOptionsAsNumpy().tobytes()
    try:
        return flexbuffers.Loads(buf)
    except Exception as e:  # noqa: BLE001
        return {"undecodable": str(e), "hex": buf.hex()}


def tensor_desc(sg, model, i: int) -> str:
    if i < 0:
        return "-1 (none)"
    t = sg.Tensors(i)
    shape = t.ShapeAsNumpy().tolist() if not t.ShapeIsNone() else []
    s = f"t{i} {_TENSOR_TYPES.get(t.Type(), t.Type())}{shape} '{t.Name().decode()}'"
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        sc = q.ScaleAsNumpy()
        zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(len(sc), np.int64)
        if len(sc) == 1:
            s += f" q(scale={_f(sc[0])}, zp={int(zp[0])})"
        else:
            s += f" q(per-axis dim={q.QuantizedDimension()}, n={len(sc)}, scales[0..3]={[_f(x) for x in sc[:3]]}, zps[0..3]={zp[:3].tolist()})"
    buf = model.Buffers(t.Buffer())
    if buf is not None and buf.DataLength() > 0:
        s += f" const({buf.DataLength()} B)"
    return s


def summarize(path: str) -> str:
    data = open(path, "rb").read()
    model = tflite.Model.GetRootAs(data, 0)
    lines = []
    lines.append(f"model: {path.rsplit('/', 1)[-1]}")
    lines.append(f"sha256: {hashlib.sha256(data).hexdigest()}")
    lines.append(f"size: {len(data)} bytes; schema version {model.Version()}; subgraphs {model.SubgraphsLength()}")
    desc = model.Description()
    if desc:
        lines.append(f"description: {desc.decode(errors='replace')}")
    for g in range(model.SubgraphsLength()):
        sg = model.Subgraphs(g)
        n_ops = sg.OperatorsLength()
        names = [op_name(model, sg.Operators(k)) for k in range(n_ops)]
        lines.append("")
        lines.append(f"== subgraph {g}: {n_ops} ops, {sg.TensorsLength()} tensors ==")
        lines.append("inputs:  " + "; ".join(tensor_desc(sg, model, int(i)) for i in sg.InputsAsNumpy()))
        lines.append("outputs: " + "; ".join(tensor_desc(sg, model, int(i)) for i in sg.OutputsAsNumpy()))
        lines.append("op types used (count): " + ", ".join(f"{k} x{v}" for k, v in sorted(Counter(names).items())))
        lines.append("")
        for k in range(n_ops):
            op = sg.Operators(k)
            ins = op.InputsAsNumpy().tolist() if not op.InputsIsNone() else []
            outs = op.OutputsAsNumpy().tolist() if not op.OutputsIsNone() else []
            lines.append(f"op {k}: {names[k]}  inputs={ins} outputs={outs}")
            bo = builtin_options(op)
            if bo:
                lines.append("    options: " + ", ".join(f"{a}={b}" for a, b in sorted(bo.items())))
            co = custom_options(op)
            if co is not None:
                lines.append("    custom_options (flexbuffer):")
                if isinstance(co, dict):
                    for a in sorted(co):
                        lines.append(f"        {a} = {co[a]!r}")
                else:
                    lines.append(f"        {co!r}")
            for i in ins:
                lines.append("    in  " + tensor_desc(sg, model, i))
            for i in outs:
                lines.append("    out " + tensor_desc(sg, model, i))
    return "\n".join(lines) + "\n"


def postprocess_options(path: str) -> dict:
    data = open(path, "rb").read()
    model = tflite.Model.GetRootAs(data, 0)
    sg = model.Subgraphs(0)
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        if op_name(model, op) == "CUSTOM:TFLite_Detection_PostProcess":
            return custom_options(op)
    return {}


if __name__ == "__main__":
    text = summarize(sys.argv[1])
    if len(sys.argv) > 2:
        open(sys.argv[2], "w").write(text)
    else:
        sys.stdout.write(text)
