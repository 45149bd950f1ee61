//! Loader errors on hand-built ONNX models: unsupported ops and unsupported uses of supported
//! ops (grouped conv, broadcasting Add, NCHW reshape) are named, broken files are
//! reported, never panic.

use super::*;

/// Minimal protobuf writer for test models.
fn key(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | wire as u32), out);
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn bytes_field(field: u32, b: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        bytes_field(1, i.as_bytes(), &mut n);
    }
    for o in outputs {
        bytes_field(2, o.as_bytes(), &mut n);
    }
    bytes_field(3, name.as_bytes(), &mut n);
    bytes_field(4, op.as_bytes(), &mut n);
    n
}

/// `ValueInfoProto` of a float tensor with fixed dims.
fn value_info(name: &str, dims: &[u64]) -> Vec<u8> {
    let mut shape = Vec::new();
    for &d in dims {
        let mut dim = Vec::new();
        key(1, 0, &mut dim);
        varint(d, &mut dim);
        bytes_field(1, &dim, &mut shape);
    }
    let mut tt = Vec::new();
    key(1, 0, &mut tt);
    varint(1, &mut tt);
    bytes_field(2, &shape, &mut tt);
    let mut ty = Vec::new();
    bytes_field(1, &tt, &mut ty);
    let mut vi = Vec::new();
    bytes_field(1, name.as_bytes(), &mut vi);
    bytes_field(2, &ty, &mut vi);
    vi
}

fn model(nodes: &[Vec<u8>], input: (&str, &[u64]), output: &str) -> Vec<u8> {
    let mut g = Vec::new();
    for n in nodes {
        bytes_field(1, n, &mut g);
    }
    bytes_field(2, b"test", &mut g);
    bytes_field(11, &value_info(input.0, input.1), &mut g);
    bytes_field(12, &value_info(output, &[]), &mut g);
    let mut m = Vec::new();
    key(1, 0, &mut m);
    varint(8, &mut m);
    let mut opset = Vec::new();
    key(2, 0, &mut opset);
    varint(13, &mut opset);
    bytes_field(8, &opset, &mut m);
    bytes_field(7, &g, &mut m);
    m
}

fn load_err(bytes: &[u8]) -> String {
    match parse(bytes, Path::new("t.onnx")) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_ops_are_named_with_their_node() {
    let m = model(
        &[
            node("Relu", "r", &["x"], &["y"]),
            node("LSTM", "my_lstm", &["y"], &["z"]),
            node("Softmax", "", &["z"], &["w"]),
        ],
        ("x", &[1, 4]),
        "w",
    );
    assert!(looks_like_onnx(&m));
    let e = load_err(&m);
    assert!(e.contains("node 'my_lstm' (LSTM)"), "{e}");
    assert!(e.contains("node producing 'w' (Softmax)"), "{e}");
    assert!(!e.contains("Relu"), "{e}");
}

#[test]
fn a_float_relu_graph_loads_and_keeps_float() {
    let m = model(&[node("Relu", "r", &["x"], &["y"])], ("x", &[1, 4]), "y");
    let g = parse(&m, Path::new("t.onnx")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.ops.len(), 1);
    assert_eq!(g.ops[0].kind, OpKind::Relu);
    assert_eq!(g.tensors[g.outputs[0]].dtype, DType::F32);
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 4]);
}

#[test]
fn layout_changing_transpose_is_reported() {
    let mut t = node("Transpose", "t", &["x"], &["y"]);
    let mut attr = Vec::new();
    bytes_field(1, b"perm", &mut attr);
    for p in [1u64, 0] {
        key(8, 0, &mut attr);
        varint(p, &mut attr);
    }
    bytes_field(5, &attr, &mut t);
    let e = load_err(&model(&[t], ("x", &[2, 3]), "y"));
    assert!(
        e.contains("node 't' (Transpose)") && e.contains("perm [1, 0]"),
        "{e}"
    );
}

#[test]
fn truncated_and_garbage_files_are_errors_not_panics() {
    let m = model(&[node("Relu", "r", &["x"], &["y"])], ("x", &[1, 4]), "y");
    for cut in [1, 5, m.len() / 2, m.len() - 1] {
        let _ = parse(&m[..cut], Path::new("t.onnx"));
    }
    let e = load_err(&[]);
    assert!(e.contains("empty"), "{e}");
    let e = load_err(&[0x08, 0x07, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(e.contains("not a valid model"), "{e}");
}

#[test]
fn reading_a_missing_value_names_it() {
    let m = model(&[node("Relu", "r", &["nope"], &["y"])], ("x", &[1, 4]), "y");
    let e = load_err(&m);
    assert!(e.contains("'nope'") && e.contains("node 'r' (Relu)"), "{e}");
}

/// `TensorProto` initializer: `dims`, data type, `raw_data` (little-endian values).
fn initializer(name: &str, dims: &[u64], data_type: u64, raw: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        key(1, 0, &mut t);
        varint(d, &mut t);
    }
    key(2, 0, &mut t);
    varint(data_type, &mut t);
    bytes_field(8, name.as_bytes(), &mut t);
    bytes_field(9, raw, &mut t);
    t
}

/// An integer attribute (`AttributeProto.i`, type INT).
fn int_attr(node: &mut Vec<u8>, name: &str, v: u64) {
    let mut a = Vec::new();
    bytes_field(1, name.as_bytes(), &mut a);
    key(3, 0, &mut a);
    varint(v, &mut a);
    key(20, 0, &mut a);
    varint(2, &mut a);
    bytes_field(5, &a, node);
}

/// [`model`] with several float inputs and initializers.
fn model_with(
    nodes: &[Vec<u8>],
    inputs: &[(&str, &[u64])],
    inits: &[Vec<u8>],
    output: &str,
) -> Vec<u8> {
    let mut g = Vec::new();
    for n in nodes {
        bytes_field(1, n, &mut g);
    }
    bytes_field(2, b"test", &mut g);
    for t in inits {
        bytes_field(5, t, &mut g);
    }
    for (name, dims) in inputs {
        bytes_field(11, &value_info(name, dims), &mut g);
    }
    bytes_field(12, &value_info(output, &[]), &mut g);
    let mut m = Vec::new();
    key(1, 0, &mut m);
    varint(8, &mut m);
    let mut opset = Vec::new();
    key(2, 0, &mut opset);
    varint(13, &mut opset);
    bytes_field(8, &opset, &mut m);
    bytes_field(7, &g, &mut m);
    m
}

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect()
}

#[test]
fn grouped_conv_is_reported_with_its_node_and_group() {
    // 4 input channels in 2 groups of 2: neither plain nor depthwise.
    let mut conv = node("Conv", "gconv", &["x", "w"], &["y"]);
    int_attr(&mut conv, "group", 2);
    let m = model_with(
        &[conv],
        &[("x", &[1, 4, 5, 5])],
        &[initializer("w", &[4, 2, 3, 3], 1, &f32_bytes(4 * 2 * 9))],
        "y",
    );
    let e = load_err(&m);
    assert!(
        e.contains("node 'gconv' (Conv)") && e.contains("grouped convolution (group 2"),
        "{e}"
    );
}

#[test]
fn broadcasting_add_is_reported_with_its_node() {
    let m = model_with(
        &[node("Add", "badd", &["x", "b"], &["y"])],
        &[("x", &[1, 4, 3, 3]), ("b", &[1, 4, 1, 1])],
        &[],
        "y",
    );
    let e = load_err(&m);
    assert!(
        e.contains("node 'badd' (Add)") && e.contains("broadcasting Add"),
        "{e}"
    );
}

#[test]
fn reshape_of_an_nchw_feature_map_is_reported() {
    // Flattening NCHW [1, 4, 2, 2] needs channel-major order; we store NHWC.
    let shape: Vec<u8> = [1i64, 16].iter().flat_map(|v| v.to_le_bytes()).collect();
    let m = model_with(
        &[node("Reshape", "flat", &["x", "s"], &["y"])],
        &[("x", &[1, 4, 2, 2])],
        &[initializer("s", &[2], 7, &shape)],
        "y",
    );
    let e = load_err(&m);
    assert!(
        e.contains("node 'flat' (Reshape)") && e.contains("reshapes an NCHW tensor"),
        "{e}"
    );
}
