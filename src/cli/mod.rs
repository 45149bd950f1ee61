//! Subcommands. Exit status contract: 0 ok; 2 bad arguments or an unreadable/invalid model;
//! 1 any other runtime error.

/// `println!` that returns the write error instead of panicking when stdout is closed
/// (`spotter board check | head -1`): callers `?` it, and `main` ends quietly on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod bench;
mod board;
mod decode_serial;
mod detect;
mod run;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "spotter",
    version,
    about = "Lean edge inference runtime for int8 detectors"
)]
struct Cli {
    /// Log level filter (error, warn, info, debug, trace); also RUST_LOG.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect objects in images; print JSON lines or a table, optionally write annotated images.
    Detect(detect::Args),
    /// Measure inference latency of a model (no image decode), optionally per op.
    Bench(bench::Args),
    /// Serve one model over HTTP (TF-Serving REST API), with metrics and a live preview page.
    Serve(serve::Args),
    /// Target boards: check this CPU against a board, show a board, make its config.
    Board(board::Args),
    /// Stream: camera/stream/folder → detector → tracker/filters → stdout, MQTT, serial.
    Run(run::Args),
    /// Decode what a serial sink wrote (stdin) into JSON lines (stdout).
    DecodeSerial(decode_serial::Args),
}

/// An error and its causes as one line, `a: b: c`, like `{:#}` but without repeating a cause
/// that the message before it already quotes (our typed errors name their I/O cause in their
/// own text and also expose it as `source()`).
pub fn render_error(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in err.chain() {
        let msg = cause.to_string();
        if last.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
        last = msg;
    }
    out
}

/// The error is (caused by) writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Exit codes.
pub const EXIT_RUNTIME: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Classify an error for the exit status: model problems and bad arguments are 2.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.downcast_ref::<spotter::ModelError>().is_some() {
            return EXIT_USAGE;
        }
        if cause
            .downcast_ref::<spotter::config::ConfigError>()
            .is_some()
        {
            return EXIT_USAGE;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return EXIT_USAGE;
        }
    }
    EXIT_RUNTIME
}

/// A bad argument discovered after parsing (missing file, bad value).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let env = env_logger::Env::default().default_filter_or(&cli.log);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
    let result = match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Board(args) => board::run(args),
        Command::Run(args) => run::run(args),
        Command::DecodeSerial(args) => decode_serial::run(args),
    };
    match result {
        Ok(code) => code,
        // The reader of our stdout went away (`| head`): nothing left to say, like other tools.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("spotter: error: {}", render_error(&e));
            exit_code(&e)
        }
    }
}
