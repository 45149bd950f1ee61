//! `spotter decode-serial --format cobs|jsonl`: turn what a serial sink wrote (read from stdin)
//! into JSON lines on stdout, one per frame, the same lines for both formats. Rejected frames
//! are skipped and counted on stderr; exit status 1 if there were any.

use std::io::{self, BufRead, Write};

use spotter::config::SerialFormatConfig;
use spotter::sinks::serial::decode_stream;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What the stream holds: cobs (spotter-wire frames) or jsonl.
    #[arg(long, value_name = "FORMAT", value_parser = super::run::parse_serial_format_arg)]
    format: SerialFormatConfig,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let stdin = io::stdin().lock();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let (frames, errors) = match args.format {
        SerialFormatConfig::Cobs => {
            let s = decode_stream(stdin, &mut stdout)?;
            if s.trailing_bytes > 0 {
                eprintln!(
                    "spotter: {} bytes of an unfinished frame at the end",
                    s.trailing_bytes
                );
            }
            (s.frames, s.errors())
        }
        SerialFormatConfig::Jsonl => jsonl(stdin, &mut stdout)?,
    };
    stdout.flush()?;
    if errors > 0 {
        eprintln!("spotter: {frames} frames decoded, {errors} rejected");
        return Ok(super::EXIT_RUNTIME);
    }
    Ok(0)
}

/// Pass through lines that are JSON objects (compacted); count the others.
fn jsonl(input: impl BufRead, out: &mut impl Write) -> io::Result<(u64, u64)> {
    let (mut frames, mut errors) = (0, 0);
    for line in input.split(b'\n') {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) if v.is_object() => {
                frames += 1;
                writeln!(out, "{v}")?;
            }
            _ => {
                errors += 1;
                log::debug!("decode-serial: not a JSON object: {text:.80}");
            }
        }
    }
    Ok((frames, errors))
}
