//! (to be written)

use crate::error::ModelError;
use crate::model::Graph;

use super::Kernel;

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    Err(ModelError::invalid_op(
        graph.op_label(index),
        "not implemented yet",
    ))
}
