//! `spotter board check|show|config|list`: the target board descriptions (boards/*/board.toml).

use std::path::PathBuf;

use spotter::board::{self, Board, Severity};

use super::UsageError;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Compare the board's expected CPU features with this CPU (exit 1 on a hard mismatch).
    Check(BoardArg),
    /// Print the parsed board description.
    Show(BoardArg),
    /// Print a spotter.toml: BASE with the board's [config] overrides merged in.
    Config {
        #[command(flatten)]
        board: BoardArg,
        /// The base config (deploy/spotter.toml).
        #[arg(long)]
        base: PathBuf,
    },
    /// List the boards of a boards/ folder.
    List {
        #[arg(long, default_value = "boards")]
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct BoardArg {
    /// Board name (boards/NAME/board.toml) or path to a board.toml. Default: the board this
    /// binary was built for.
    #[arg(long)]
    board: Option<String>,
}

fn find(arg: &BoardArg) -> anyhow::Result<Board> {
    Board::find(arg.board.as_deref()).map_err(|e| UsageError(e.to_string()).into())
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        Command::Check(arg) => {
            let b = find(&arg)?;
            outln!("board {} ({})", b.name, b.path.display())?;
            if let Some(built) = board::built_for() {
                outln!("this binary was built for board {built}")?;
            }
            let findings = board::check_cpu(&b);
            for f in &findings {
                outln!("{f}")?;
            }
            if let (Some(have), Some(floor)) = (board::running_glibc(), Some(&b.build.glibc)) {
                outln!("glibc {have} running; board floor {floor}")?;
            }
            let worst = findings.iter().map(|f| f.severity).max();
            Ok(if worst == Some(Severity::Error) {
                super::EXIT_RUNTIME
            } else {
                0
            })
        }
        Command::Show(arg) => {
            let b = find(&arg)?;
            outln!("name        {}", b.name)?;
            outln!("description {}", b.description)?;
            outln!("file        {}", b.path.display())?;
            outln!("target      {}", b.build.target)?;
            outln!("glibc       {}", b.build.glibc)?;
            outln!("deb arch    {}", b.build.deb_arch)?;
            outln!("cpu         {}", b.build.cpu.as_deref().unwrap_or("-"))?;
            let f: Vec<&str> = b.cpu_features.iter().map(|i| i.name()).collect();
            outln!(
                "features    {}",
                if f.is_empty() {
                    "-".into()
                } else {
                    f.join(", ")
                }
            )?;
            outln!("threads     {}", b.threads)?;
            outln!("camera      {}", b.camera.as_deref().unwrap_or("-"))?;
            outln!("serial      {}", b.serial.as_deref().unwrap_or("-"))?;
            Ok(0)
        }
        Command::Config { board: arg, base } => {
            let b = find(&arg)?;
            let text = std::fs::read_to_string(&base)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", base.display())))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| UsageError(format!("{}: {e}", base.display())))?;
            let merged = b.merged_config(&table);
            outln!(
                "# spotter configuration for board {} ({}).\n# Generated from {} and {}.",
                b.name,
                b.description,
                base.display(),
                b.path.display()
            )?;
            print!("{}", toml::to_string(&merged)?);
            Ok(0)
        }
        Command::List { dir } => {
            let boards = board::list(&dir).map_err(|e| UsageError(e.to_string()))?;
            for b in boards.values() {
                outln!(
                    "{:<12} {:<32} glibc {:<5} {}",
                    b.name,
                    b.build.target,
                    b.build.glibc,
                    b.description
                )?;
            }
            Ok(0)
        }
    }
}
