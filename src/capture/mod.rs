//! Frame sources: V4L2 devices, image files and folders, MJPEG over HTTP, a test pattern.

use crate::pipeline::Frame;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The device or stream is gone (unplugged, connection lost); the caller may reopen it.
    #[error("{source_name}: disconnected: {what}")]
    Disconnected { source_name: String, what: String },
    /// A frame could not be decoded; skip it and go on.
    #[error("{source_name}: corrupt frame: {what}")]
    Corrupt { source_name: String, what: String },
    #[error("{source_name}: {what}")]
    Open { source_name: String, what: String },
}

pub trait Source: Send {
    fn name(&self) -> &str;
    /// Block until the next frame; `Ok(None)` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError>;
}
