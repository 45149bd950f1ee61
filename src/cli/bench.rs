//! `spotter bench --model M [--threads N] [--runs R] [--json] [--profile]`: inference latency
//! of the model alone (no decode/resize), on a deterministic input.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use spotter::runtime::{Session, SessionOptions};

use super::UsageError;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (.tflite, or an ONNX QDQ int8 .onnx). Default: the shipped Coral SSD MobileNet v2 COCO.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads (default: number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed runs (after 3 warm-up runs).
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// One JSON line: model, isa, threads, runs, median_ms, min_ms.
    #[arg(long)]
    json: bool,
    /// Per-op table: time (mean and fastest run), share, GMAC/s.
    #[arg(long)]
    profile: bool,
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if args.runs == 0 {
        return Err(UsageError("--runs must be at least 1".into()).into());
    }
    let threads = args.threads.unwrap_or_else(default_threads);
    if threads == 0 {
        return Err(UsageError("--threads must be at least 1".into()).into());
    }
    let isa = spotter::kernels::isa::selected().map_err(|e| UsageError(e.to_string()))?;
    let model = super::detect::resolve_model(args.model)?;
    let graph = spotter::model::load(&model)?;
    let mut session = Session::new(
        graph,
        SessionOptions {
            threads,
            ..Default::default()
        },
    )?;
    // Deterministic, non-constant input: a byte ramp (floats from it for float inputs).
    fill_input(&mut session);

    for _ in 0..3 {
        session.run();
    }
    let n_ops = session.graph().ops.len();
    // Per op: total over the runs (for the mean) and the fastest run. On a shared host the
    // minimum is the steadier figure for comparing two builds: noise only ever adds time.
    let mut per_op = vec![Duration::ZERO; n_ops];
    let mut per_op_min = vec![Duration::MAX; n_ops];
    let mut this_run = vec![Duration::ZERO; n_ops];
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        if args.profile {
            this_run.fill(Duration::ZERO);
            session.run_observed(&mut |i, d| this_run[i] += d);
            for ((sum, min), d) in per_op.iter_mut().zip(&mut per_op_min).zip(&this_run) {
                *sum += *d;
                *min = (*min).min(*d);
            }
        } else {
            session.run();
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    let min = times[0];
    let name = model.display().to_string();
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "model": name, "isa": isa.name(), "threads": threads, "runs": args.runs,
                "median_ms": (median * 1000.0).round() / 1000.0,
                "min_ms": (min * 1000.0).round() / 1000.0,
            })
        )?;
    } else {
        outln!(
            "{name}: isa {isa}, {threads} thread(s), {} runs: median {median:.3} ms, min {min:.3} ms",
            args.runs
        )?;
    }
    if args.profile {
        print_profile(&session, &per_op, &per_op_min, args.runs)?;
    }
    Ok(0)
}

fn fill_input(session: &mut Session) {
    let dtype = session.graph().tensor(session.graph().inputs[0]).dtype;
    let buf = session.input_mut(0);
    match dtype {
        spotter::model::DType::F32 => {
            for (i, c) in buf.chunks_exact_mut(4).enumerate() {
                let v = ((i * 7) % 256) as f32 / 127.5 - 1.0;
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => buf
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = ((i * 7) % 256) as u8),
    }
}

/// The per-op table: mean and fastest time per run, share of the total, GMAC/s (from the
/// mean), slowest op first.
fn print_profile(
    session: &Session,
    per_op: &[Duration],
    per_op_min: &[Duration],
    runs: usize,
) -> std::io::Result<()> {
    let names = session.kernel_names();
    let macs = session.kernel_macs();
    let total: f64 = per_op
        .iter()
        .map(|d| d.as_secs_f64())
        .sum::<f64>()
        .max(1e-12);
    outln!(
        "{:>4}  {:<24} {:<36} {:>9} {:>9} {:>6} {:>8}",
        "op",
        "type",
        "kernel",
        "ms",
        "min ms",
        "share",
        "GMAC/s"
    )?;
    let mut rows: Vec<usize> = (0..per_op.len()).collect();
    rows.sort_by(|&a, &b| per_op[b].cmp(&per_op[a]));
    for i in rows {
        let secs = per_op[i].as_secs_f64() / runs as f64;
        let gmacs = if macs[i] > 0 && secs > 0.0 {
            macs[i] as f64 / secs / 1e9
        } else {
            0.0
        };
        outln!(
            "{:>4}  {:<24} {:<36} {:>9.4} {:>9.4} {:>5.1}% {:>8.1}",
            i,
            session.graph().ops[i].kind.name(),
            names[i],
            secs * 1e3,
            per_op_min[i].as_secs_f64() * 1e3,
            100.0 * per_op[i].as_secs_f64() / total,
            gmacs
        )?;
    }
    Ok(())
}
