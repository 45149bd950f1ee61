//! A one-line progress bar on stderr (redrawn in place; no dependency).

use std::io::Write;

pub struct Progress {
    label: String,
    enabled: bool,
    last: Option<usize>,
}

impl Progress {
    pub fn new(label: &str, enabled: bool) -> Self {
        Progress {
            label: label.to_string(),
            enabled,
            last: None,
        }
    }

    /// Show `done` of `total`.
    pub fn update(&mut self, done: usize, total: usize) {
        if !self.enabled || self.last == Some(done) {
            return;
        }
        self.last = Some(done);
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{:<24} [{}{}] {done}/{total}",
            self.label,
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
        if done >= total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}
