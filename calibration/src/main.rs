//! `spotter-calibrate`: float model (TFLite, ONNX, TF frozen graph) + calibration images → int8
//! TFLite model.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use spotter_calibrate::{
    dataset::Normalize, format_report, import::Cut, ranges::Method, run, Config,
};

#[derive(Parser, Debug)]
#[command(
    name = "spotter-calibrate",
    about = "Quantize a float model (TFLite, ONNX, TF frozen graph) to an int8 TFLite model with calibration images"
)]
struct Args {
    /// Float model: .tflite (fp16 weights are folded to float32 first), .onnx, or a TF frozen
    /// graph .pb (both imported through tract).
    #[arg(long)]
    model: PathBuf,
    /// ONNX / TF only: node names whose outputs become the model input (cuts away
    /// pre-processing), comma-separated; `name:0` is accepted.
    #[arg(long, value_delimiter = ',')]
    inputs: Vec<String>,
    /// ONNX / TF only: node names whose outputs become the model outputs (cuts away
    /// post-processing), comma-separated.
    #[arg(long, value_delimiter = ',')]
    outputs: Vec<String>,
    /// ONNX / TF only: the input shape when the model does not give it (e.g. 1,300,300,3).
    #[arg(long, value_delimiter = ',')]
    input_shape: Option<Vec<usize>>,
    /// Folder of calibration images (JPEG/PNG; undecodable files are skipped and counted).
    #[arg(long)]
    images: PathBuf,
    /// Use at most N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Input normalization: (pixel - mean) / std; a scalar or R,G,B values.
    #[arg(long, default_value = "127.5", allow_hyphen_values = true)]
    mean: String,
    /// A scalar or R,G,B values (none zero).
    #[arg(long, default_value = "127.5")]
    std: String,
    /// Range selection: minmax, percentile, entropy or mse.
    #[arg(long, default_value = "mse")]
    method: Method,
    #[arg(long, default_value = "model_int8.tflite")]
    out: PathBuf,
    /// Also write the report as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Ops to keep in float: op indices or op output tensor names, comma-separated.
    #[arg(long, value_delimiter = ',')]
    keep_float: Vec<String>,
    /// Per-channel weight scales for CONV_2D / DEPTHWISE_CONV_2D.
    #[arg(long, default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    per_channel: bool,
    /// Empirical bias correction, layer by layer in topological order (each conv's mean output
    /// shift measured with all earlier layers already quantized and corrected).
    #[arg(long, default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    bias_correction: bool,
    /// Cross-layer equalization (Nagel et al. 2019) of conv -> (RELU | none | PRELU) -> conv /
    /// depthwise pairs before calibration (never across RELU6, which it would change).
    #[arg(long)]
    cle: bool,
    /// Make the model input int8 (with the calibrated input scale) instead of float.
    #[arg(long)]
    int8_input: bool,
    /// Images for the SQNR report (default: the calibration images).
    #[arg(long)]
    eval_images: Option<PathBuf>,
    /// Also write the folded float32 model (fp16 weights expanded) to this file.
    #[arg(long)]
    write_float: Option<PathBuf>,
    /// Layers shown in the table.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("expected on or off, got '{other}'")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(a: Args) -> Result<()> {
    let cfg = Config {
        model: a.model,
        cut: Cut {
            inputs: a.inputs,
            outputs: a.outputs,
            input_shape: a.input_shape,
        },
        images: a.images,
        limit: a.limit,
        norm: Normalize::parse(&a.mean, &a.std)?,
        method: a.method,
        out: a.out,
        keep_float: a.keep_float,
        per_channel: a.per_channel,
        int8_input: a.int8_input,
        bias_correction: a.bias_correction,
        cle: a.cle,
        eval_images: a.eval_images,
        write_float: a.write_float,
        progress: !a.quiet,
    };
    let report = run(&cfg)?;
    print!("{}", format_report(&report, a.show));
    if let Some(p) = &a.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
