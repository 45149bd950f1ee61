//! Corrupted variants of the default model (issue 7): truncations, bit flips, zeroed spans,
//! random overwrites and edited offsets / vector lengths inside the flatbuffer tables.
//!
//! Two checks over the same deterministic variant set:
//! - in process: `tflite::parse` + `Detector::from_graph` + one inference under `catch_unwind`
//!   and a per-variant timeout (a panic or a hang fails the test);
//! - the CLI: `spotter detect --json` per variant, with a timeout; exit 0 must print one JSON
//!   line, exit 2 must name the model file, anything else (101, a signal, a hang) fails.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use spotter::detector::{Detector, DetectorOptions};
use spotter::model::tflite;
use spotter::vision::image::RgbImage;

/// Per-variant time limit: a normal load + inference takes well under a second.
const TIMEOUT: Duration = Duration::from_secs(30);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64: deterministic, so every run tests the same variants.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 11) as usize % n.max(1)
    }
}

/// Byte positions of the flatbuffer structure: table starts (soffset to the vtable), vtables,
/// every present field of the tables the loader reads, and vector length words. Found by a
/// small independent walker over the TFLite schema (Model → SubGraph → Tensor / Operator,
/// OperatorCode, Buffer) so corruptions can be aimed at offsets and lengths, not only weights.
#[derive(Default)]
struct Structure {
    /// Positions of 4-byte words that are offsets, vector lengths or table scalars.
    words: Vec<usize>,
    /// Positions of vtables (u16 entries).
    vtables: Vec<usize>,
}

fn u32_at(b: &[u8], pos: usize) -> Option<u32> {
    let s = b.get(pos..pos + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], pos: usize) -> Option<u16> {
    let s = b.get(pos..pos + 2)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

impl Structure {
    /// Field `i` position of the table at `t`, recording the table's structure on the way.
    fn field(&self, b: &[u8], t: usize, i: usize) -> Option<usize> {
        let vt = (t as i64 - u32_at(b, t)? as i32 as i64) as usize;
        let vt_len = u16_at(b, vt)? as usize;
        if 4 + 2 * i + 2 > vt_len {
            return None;
        }
        let off = u16_at(b, vt + 4 + 2 * i)? as usize;
        (off != 0).then_some(t + off)
    }

    fn table(&mut self, b: &[u8], t: usize, fields: usize) {
        self.words.push(t);
        if let Some(vt) = u32_at(b, t).map(|o| (t as i64 - o as i32 as i64) as usize) {
            self.vtables.push(vt);
        }
        for i in 0..fields {
            if let Some(p) = self.field(b, t, i) {
                self.words.push(p);
            }
        }
    }

    /// Follow the offset field `i` of table `t` to a vector; record its length word.
    fn vector(&mut self, b: &[u8], t: usize, i: usize) -> Option<(usize, usize)> {
        let p = self.field(b, t, i)?;
        let v = p + u32_at(b, p)? as usize;
        self.words.push(v);
        Some((v + 4, u32_at(b, v)? as usize))
    }

    fn subtable(&mut self, b: &[u8], t: usize, i: usize) -> Option<usize> {
        let p = self.field(b, t, i)?;
        Some(p + u32_at(b, p)? as usize)
    }

    /// Tables of a vector of tables.
    fn tables(&mut self, b: &[u8], t: usize, i: usize) -> Vec<usize> {
        let Some((start, len)) = self.vector(b, t, i) else {
            return Vec::new();
        };
        (0..len)
            .filter_map(|k| {
                let p = start + 4 * k;
                Some(p + u32_at(b, p)? as usize)
            })
            .collect()
    }

    fn of(b: &[u8]) -> Structure {
        let mut s = Structure::default();
        s.words.push(0);
        let model = u32_at(b, 0).expect("root offset") as usize;
        s.table(b, model, 6);
        for c in s.tables(b, model, 1) {
            s.table(b, c, 4);
        }
        for buf in s.tables(b, model, 4) {
            s.table(b, buf, 3);
            s.vector(b, buf, 0);
        }
        for sg in s.tables(b, model, 2) {
            s.table(b, sg, 5);
            s.vector(b, sg, 1);
            s.vector(b, sg, 2);
            for t in s.tables(b, sg, 0) {
                s.table(b, t, 6);
                s.vector(b, t, 0);
                s.vector(b, t, 3);
                if let Some(q) = s.subtable(b, t, 4) {
                    s.table(b, q, 7);
                    s.vector(b, q, 2);
                    s.vector(b, q, 3);
                }
            }
            for o in s.tables(b, sg, 3) {
                s.table(b, o, 8);
                s.vector(b, o, 1);
                s.vector(b, o, 2);
                if let Some(opts) = s.subtable(b, o, 4) {
                    s.table(b, opts, 12);
                }
                s.vector(b, o, 5);
            }
        }
        s.words.retain(|&p| p + 4 <= b.len());
        s.words.sort_unstable();
        s.words.dedup();
        s.vtables.retain(|&p| p + 4 <= b.len());
        s.vtables.sort_unstable();
        s.vtables.dedup();
        s
    }
}

/// The deterministic corrupted variants: `(name, bytes)`.
fn variants(good: &[u8]) -> Vec<(String, Vec<u8>)> {
    let s = Structure::of(good);
    assert!(
        s.words.len() > 500 && s.vtables.len() > 8,
        "walker found only {} words / {} vtables: is this the TFLite model?",
        s.words.len(),
        s.vtables.len()
    );
    let mut rng = Rng(0x5eed_cafe_f00d_0007);
    let mut out = Vec::new();
    let n = good.len();

    // Truncations: inside the header, at structure positions (mid-table, mid-vector length),
    // evenly through the file, and near the end.
    let mut cuts = vec![
        1usize,
        4,
        7,
        9,
        12,
        16,
        20,
        32,
        100,
        1000,
        n - 1,
        n - 2,
        n - 5,
        n - 17,
    ];
    for k in 0..20 {
        cuts.push(s.words[k * s.words.len() / 20] + 2);
    }
    for k in 1..10 {
        cuts.push(k * n / 10);
    }
    for (i, c) in cuts.into_iter().enumerate() {
        out.push((format!("trunc{i}-at{c}"), good[..c].to_vec()));
    }

    // Bit flips: 1-3 flips in structure words, or anywhere in the file.
    for i in 0..40 {
        let mut b = good.to_vec();
        for _ in 0..1 + i % 3 {
            let pos = if i % 4 == 3 {
                rng.below(n)
            } else {
                s.words[rng.below(s.words.len())] + rng.below(4)
            };
            b[pos] ^= 1 << rng.below(8);
        }
        out.push((format!("flip{i}"), b));
    }

    // Zeroed spans of 4 B .. 4 KiB starting at structure positions or vtables.
    for i in 0..25 {
        let mut b = good.to_vec();
        let start = if i % 2 == 0 {
            s.words[rng.below(s.words.len())]
        } else {
            s.vtables[rng.below(s.vtables.len())]
        };
        let len = 4 << rng.below(11);
        let end = (start + len).min(n);
        b[start..end].fill(0);
        out.push((format!("zero{i}-at{start}+{len}"), b));
    }

    // Random overwrites of 1..256 bytes at structure positions.
    for i in 0..25 {
        let mut b = good.to_vec();
        let start = s.words[rng.below(s.words.len())];
        let len = 1 + rng.below(256);
        for x in &mut b[start..(start + len).min(n)] {
            *x = rng.next() as u8;
        }
        out.push((format!("rand{i}-at{start}+{len}"), b));
    }

    // Edited words: offsets, vector lengths and table scalars set to hostile values.
    for i in 0..50 {
        let mut b = good.to_vec();
        let pos = s.words[rng.below(s.words.len())];
        let old = u32_at(good, pos).unwrap();
        let new = match i % 7 {
            0 => old.swap_bytes(),
            1 => 0,
            2 => u32::MAX,
            3 => 0x7fff_ffff,
            4 => old.wrapping_add(1),
            5 => old.wrapping_sub(4),
            _ => old.wrapping_mul(3),
        };
        b[pos..pos + 4].copy_from_slice(&new.to_le_bytes());
        out.push((format!("word{i}-at{pos}"), b));
    }

    // Swapped vtable entries (field offsets pointing at the wrong field).
    for i in 0..15 {
        let mut b = good.to_vec();
        let vt = s.vtables[rng.below(s.vtables.len())];
        let len = u16_at(good, vt).unwrap_or(4) as usize;
        let entries = len.saturating_sub(4) / 2;
        if entries >= 2 {
            let (x, y) = (rng.below(entries), rng.below(entries));
            let (px, py) = (vt + 4 + 2 * x, vt + 4 + 2 * y);
            let (ex, ey) = ([b[px], b[px + 1]], [b[py], b[py + 1]]);
            b[px..px + 2].copy_from_slice(&ey);
            b[py..py + 2].copy_from_slice(&ex);
        } else {
            b[vt] ^= 0x40;
        }
        out.push((format!("vtswap{i}-at{vt}"), b));
    }
    out
}

/// More edits of structure words (in process only, where a variant costs milliseconds):
/// `count` variants, each with 1-3 words set to hostile or nearby values.
fn more_word_edits(good: &[u8], count: usize) -> Vec<(String, Vec<u8>)> {
    let s = Structure::of(good);
    let mut rng = Rng(0xdead_beef_0bad_f11e);
    (0..count)
        .map(|i| {
            let mut b = good.to_vec();
            for _ in 0..1 + i % 3 {
                let pos = s.words[rng.below(s.words.len())];
                let old = u32_at(good, pos).unwrap();
                let new = match rng.below(6) {
                    0 => rng.next() as u32,
                    1 => old ^ (1 << rng.below(32)),
                    2 => old.wrapping_add(rng.below(64) as u32 * 4),
                    3 => old.wrapping_sub(rng.below(64) as u32 * 4),
                    4 => old.rotate_left(8),
                    _ => 1 << rng.below(32),
                };
                b[pos..pos + 4].copy_from_slice(&new.to_le_bytes());
            }
            (format!("edit{i}"), b)
        })
        .collect()
}

fn good_model() -> Vec<u8> {
    std::fs::read(coral_model()).expect("default model")
}

/// Run `f` on its own thread; `Err` describes a panic or a timeout.
fn guarded<F: FnOnce() -> String + Send + 'static>(f: F) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(p)) => Err(format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
        Err(_) => Err(format!("no result within {TIMEOUT:?} (hang)")),
    }
}

/// Load, prepare and run one variant in process; returns "ok", or the error message.
fn load_and_run(bytes: Vec<u8>, path: PathBuf) -> String {
    let graph = match tflite::parse(&bytes, &path) {
        Ok(g) => g,
        Err(e) => return format!("parse: {e}"),
    };
    let mut det = match Detector::from_graph(graph, None, DetectorOptions::default()) {
        Ok(d) => d,
        Err(e) => return format!("prepare: {e}"),
    };
    let mut img = RgbImage::new(64, 48);
    for (i, p) in img.data.iter_mut().enumerate() {
        *p = (i * 7) as u8;
    }
    match det.detect(&img, 0.3) {
        Ok(d) => format!("ok ({} detections)", d.len()),
        Err(e) => format!("input: {e}"),
    }
}

#[test]
fn corrupted_models_never_panic_or_hang_in_process() {
    let good = good_model();
    let mut vs = variants(&good);
    assert!(vs.len() >= 150, "only {} variants", vs.len());
    vs.extend(more_word_edits(&good, 800));
    let total = vs.len();
    let mut failures = Vec::new();
    let mut rejected = 0;
    for (name, bytes) in vs {
        let path = PathBuf::from(format!("{name}.tflite"));
        match guarded(move || load_and_run(bytes, path)) {
            Ok(r) if r.starts_with("ok") => {}
            Ok(_) => rejected += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!("{total} variants: {rejected} rejected with an error, the rest ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Most corruptions in the structure must be caught, not silently accepted.
    assert!(rejected > 500, "only {rejected} variants were rejected");
}

/// `spotter detect` with a timeout: (exit code or None for a signal, stdout, stderr).
fn detect_with_timeout(model: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["detect", "--json", "--threads", "1", "--model"])
        .arg(model)
        .arg("models/samples/chelsea.png")
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spotter");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let (mut o, mut e) = (String::new(), String::new());
            child.stdout.take().unwrap().read_to_string(&mut o).ok();
            child.stderr.take().unwrap().read_to_string(&mut e).ok();
            return (status.code(), o, e);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return (Some(-1), String::new(), format!("hung for {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn corrupted_models_exit_0_with_json_or_2_naming_the_file() {
    let good = good_model();
    let dir = tempfile::tempdir().unwrap();
    let vs = variants(&good);
    assert!(vs.len() >= 150, "only {} variants", vs.len());
    let mut failures = Vec::new();
    for (name, bytes) in &vs {
        let file = format!("{name}.tflite");
        let model = dir.path().join(&file);
        std::fs::write(&model, bytes).unwrap();
        let (code, stdout, stderr) = detect_with_timeout(&model);
        match code {
            Some(0) => {
                let lines: Vec<&str> = stdout.lines().collect();
                let ok = lines.len() == 1
                    && serde_json::from_str::<serde_json::Value>(lines[0])
                        .map(|v| v["detections"].is_array())
                        .unwrap_or(false);
                if !ok {
                    failures.push(format!("{name}: exit 0 without one JSON line: {stdout}"));
                }
            }
            Some(2) if stderr.contains(&file) && !stderr.contains("panicked") => {}
            Some(2) => failures.push(format!("{name}: exit 2 not naming the file: {stderr}")),
            other => failures.push(format!("{name}: exit {other:?}: {stderr}")),
        }
        let _ = std::fs::remove_file(&model);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
