//! `spotter` command line. Thin: parses arguments and hands off to `cli::*`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
