"""Which Convs of a QDQ model ONNX Runtime (CPU EP) fuses into QLinearConv, and why the rest stay
float: the contract spotter's ONNX loader matches (docs/numerics.md, "ONNX QDQ models").

Usage: python3 scripts/calib/ort_fusion_report.py MODEL.onnx [--list]

What it does:
1. Lets ONNX Runtime optimize MODEL (ORT_ENABLE_ALL) and counts QLinearConv vs float Conv in the
   optimized graph.
2. Predicts the same split from the raw graph with ONNX Runtime's x86 rules:
   - `QDQIsInt8Allowed()` is false on x86 (`qdq_selector_action_transformer.h`), so
     `ConvNodeGroupSelector::Check` rejects int8 activations; int8 QDQ convs fuse only after
     `QDQS8ToU8Transformer` has turned their input and output Q/DQ pairs into uint8.
   - `QDQS8ToU8Transformer` converts a QuantizeLinear only if it has exactly one output edge
     (`CheckOutputEdges(graph, node, 1)`). The level-1 `EnsureUniqueDQForNodeUnit` pass first
     gives every consumer of a shared DequantizeLinear its own copy, so a tensor read by k nodes
     ends with k edges on its Q: every fanned-out activation (residual branches, the SSD heads)
     stays int8, and every Conv reading or writing one stays DQ -> float Conv -> Q.
   With uint8 activations (quantize_static's default) there is nothing to convert and every
   Conv fuses (spotter is bit-exact with ORT there, tests/onnx_qdq.rs).

Prints both counts and, with --list, the predicted-unfused convs and which side fans out.
Needs onnx and onnxruntime.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path


def optimized_counts(model: Path) -> collections.Counter:
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "opt.onnx"
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(out)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        return collections.Counter(n.op_type for n in onnx.load(str(out)).graph.node)


def predict_unfused(model: Path) -> list[tuple[str, bool, bool]]:
    """(conv name, input fans out, output fans out) for each conv ORT leaves in float."""
    import onnx

    g = onnx.load(str(model)).graph
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    producer = {o: n for n in g.node for o in n.output}
    graph_outputs = {o.name for o in g.output}

    def edges_after_unique_dq(q) -> int:
        # One DQ per consumer after EnsureUniqueDQForNodeUnit.
        return sum(max(1, len(consumers[dq.output[0]])) for dq in consumers[q.output[0]])

    def int8_q(q) -> bool:
        # quantize_static's Q nodes carry (input, scale, zero_point); int8 zero point type.
        zp = next((t for t in g.initializer if len(q.input) > 2 and t.name == q.input[2]), None)
        return zp is not None and zp.data_type == onnx.TensorProto.INT8

    out = []
    for n in g.node:
        if n.op_type != "Conv":
            continue
        dq = producer.get(n.input[0])
        q_in = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" \
            else None
        in_fans = q_in is None or q_in.op_type != "QuantizeLinear" or (
            int8_q(q_in) and edges_after_unique_dq(q_in) != 1)
        nxt = consumers[n.output[0]]
        q_out = nxt[0] if len(nxt) == 1 else None
        if q_out is not None and q_out.op_type in ("Relu", "Clip"):
            after = consumers[q_out.output[0]]
            q_out = after[0] if len(after) == 1 else None
        out_fans = (q_out is None or q_out.op_type != "QuantizeLinear"
                    or q_out.output[0] in graph_outputs
                    or (int8_q(q_out) and edges_after_unique_dq(q_out) != 1))
        if in_fans or out_fans:
            out.append((n.name, in_fans, out_fans))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--list", action="store_true", help="list the predicted-unfused convs")
    a = ap.parse_args()
    ops = optimized_counts(a.model)
    unfused = predict_unfused(a.model)
    print(f"ONNX Runtime: {ops['QLinearConv']} QLinearConv, {ops['Conv'] + ops['FusedConv']} "
          f"float Conv; float Add left: {ops['Add']}")
    ins = sum(1 for _, i, _ in unfused if i)
    print(f"predicted float convs: {len(unfused)} ({ins} read a fanned-out int8 tensor, "
          f"{len(unfused) - ins} only write one)")
    if a.list:
        for name, i, o in unfused:
            print(f"  {name}: {'input ' if i else ''}{'output' if o else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
