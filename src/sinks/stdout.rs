//! Stdout sink: one JSON line per frame (the serialized [`FrameResult`]), flushed per line so a
//! pipe sees results as they happen. The default sink when no other is configured.
//!
//! Blocking policy: writing to stdout may block if the reader is slow; stdout is a local pipe
//! or terminal, so this is the reader's choice. Once the reader is gone (broken pipe) the sink
//! goes quiet instead of failing every frame.

use std::io::{self, Write};

use crate::pipeline::{FrameResult, PipelineStats};
use crate::sinks::{Sink, SinkError};

pub struct StdoutSink<W: Write + Send = io::Stdout> {
    out: W,
    line: Vec<u8>,
    /// Also write `{"stats": {...}}` lines.
    stats: bool,
    closed: bool,
}

impl StdoutSink<io::Stdout> {
    pub fn new(stats: bool) -> Self {
        StdoutSink::with_writer(io::stdout(), stats)
    }
}

impl<W: Write + Send> StdoutSink<W> {
    pub fn with_writer(out: W, stats: bool) -> Self {
        StdoutSink {
            out,
            line: Vec::with_capacity(4096),
            stats,
            closed: false,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_line(&mut self) -> Result<(), SinkError> {
        if self.closed {
            return Ok(());
        }
        self.line.push(b'\n');
        let r = self
            .out
            .write_all(&self.line)
            .and_then(|_| self.out.flush());
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                log::warn!("stdout: reader went away; no more output there");
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(SinkError::Failed {
                sink: "stdout".into(),
                what: e.to_string(),
            }),
        }
    }

    fn encode(&mut self, value: &impl serde::Serialize) -> Result<(), SinkError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).map_err(|e| SinkError::Failed {
            sink: "stdout".into(),
            what: format!("cannot serialize: {e}"),
        })
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    fn name(&self) -> &str {
        "stdout"
    }

    fn kind(&self) -> &'static str {
        "stdout"
    }

    fn publish(&mut self, frame: &FrameResult) -> Result<(), SinkError> {
        self.encode(frame)?;
        self.write_line()
    }

    fn stats(&mut self, stats: &PipelineStats) -> Result<(), SinkError> {
        if !self.stats {
            return Ok(());
        }
        #[derive(serde::Serialize)]
        struct Line<'a> {
            stats: &'a PipelineStats,
        }
        self.encode(&Line { stats })?;
        self.write_line()
    }

    fn close(&mut self) -> Result<(), SinkError> {
        if self.closed {
            return Ok(());
        }
        self.out.flush().map_err(|e| SinkError::Failed {
            sink: "stdout".into(),
            what: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_line_per_frame_and_optional_stats() {
        let mut s = StdoutSink::with_writer(Vec::new(), true);
        let f = FrameResult {
            camera: "cam".into(),
            frame: 7,
            frame_time: 1.5,
            width: 4,
            height: 2,
            detections: vec![],
            inference_ms: 3.0,
        };
        s.publish(&f).expect("publish");
        s.stats(&PipelineStats::default()).expect("stats");
        s.close().expect("close");
        let out = String::from_utf8(s.into_inner()).expect("utf8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
        assert_eq!(v["frame"], 7);
        assert_eq!(v["camera"], "cam");
        assert!(lines[1].starts_with("{\"stats\":"));
    }
}
