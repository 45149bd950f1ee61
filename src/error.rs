//! Typed errors of the library. Binaries wrap them with `anyhow` context; the CLI maps
//! [`ModelError`] to exit status 2.

use std::path::PathBuf;

/// Anything wrong with a model file or graph: unreadable, malformed, unsupported, inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: cannot read model file: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid model: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
    #[error("{}: unsupported operators: {}", path.display(), names.join(", "))]
    Unsupported { path: PathBuf, names: Vec<String> },
    /// An operator whose tensors or options are inconsistent (`op` is like `op #12 CONV_2D`).
    #[error("{op}: {what}")]
    InvalidOp { op: String, what: String },
    #[error("{what}")]
    Invalid { what: String },
}

impl ModelError {
    pub fn invalid_op(op: impl Into<String>, what: impl Into<String>) -> Self {
        ModelError::InvalidOp {
            op: op.into(),
            what: what.into(),
        }
    }
}

/// Problems with an input image (decode, size) or a label file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot decode image: {what}", path.display())]
    Decode { path: PathBuf, what: String },
    #[error("{}:{line}: {what}", path.display())]
    Labels {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error("{what}")]
    Invalid { what: String },
}
