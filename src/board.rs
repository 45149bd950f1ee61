//! Target boards: `boards/<name>/board.toml` describes what a build for a board is (target
//! triple, glibc floor) and what the board is expected to have (CPU kernel tiers, cores,
//! camera and serial device, config overrides).
//!
//! The runtime uses it for a start-up check: a build made for a board whose CPU has a kernel
//! tier (say the rpi5 build, which expects `dotprod`) started on a CPU without it (a Pi 4) gets
//! a clear message instead of silently running slower. Builds do not pass `-C target-cpu` by
//! default (see the Makefile), so such a binary still runs, on the tiers the CPU has; a binary
//! compiled *with* a feature the CPU lacks is reported as an error.
//!
//! Search order for `--board NAME`: `$SPOTTER_BOARDS/NAME/board.toml`, `./boards/NAME/...`,
//! `<exe dir>/../share/spotter/boards/NAME/...` (the .deb), `/usr/share/spotter/boards/...`,
//! then the source checkout. A value containing `/` or ending in `.toml` is a path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::kernels::Isa;

/// A parsed `board.toml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Board {
    pub name: String,
    pub description: String,
    /// Where it was loaded from (for messages).
    pub path: PathBuf,
    pub build: BuildSpec,
    /// Kernel tiers the board's CPU provides (`[cpu] features`).
    pub cpu_features: Vec<Isa>,
    /// Default inference threads (`[cpu] threads`).
    pub threads: usize,
    pub camera: Option<String>,
    pub serial: Option<String>,
    /// `[config]`: keys merged over the default `spotter.toml` for this board.
    pub config: toml::Table,
}

/// `[build]`: how to cross-compile for the board.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// Rust target triple, e.g. `aarch64-unknown-linux-gnu`.
    pub target: String,
    /// Oldest glibc the binary must run on, `MAJOR.MINOR` (e.g. `2.31`).
    pub glibc: String,
    /// Debian architecture of the .deb (`arm64`, `armhf`, `amd64`).
    pub deb_arch: String,
    /// The board's core for `-C target-cpu` (only used when asked for, see the Makefile).
    #[serde(default)]
    pub cpu: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    name: String,
    #[serde(default)]
    description: String,
    build: BuildSpec,
    cpu: RawCpu,
    #[serde(default)]
    devices: RawDevices,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCpu {
    #[serde(default)]
    features: Vec<String>,
    threads: usize,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevices {
    camera: Option<String>,
    serial: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot read board file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("no board named `{name}` (looked for {tried})")]
    NotFound { name: String, tried: String },
    #[error("no --board given and this binary was not built for a board (make cross BOARD=...)")]
    NoDefault,
}

/// The board this binary was cross-built for (`make cross BOARD=...` sets `SPOTTER_BOARD` at
/// compile time), if any.
pub fn built_for() -> Option<&'static str> {
    option_env!("SPOTTER_BOARD").filter(|s| !s.is_empty())
}

/// Candidate `boards/` folders, in search order.
pub fn board_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("SPOTTER_BOARDS") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("boards"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.join("../share/spotter/boards"));
        }
    }
    dirs.push(PathBuf::from("/usr/share/spotter/boards"));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("boards"));
    dirs
}

impl Board {
    /// Find a board by name (or path) as described in the module docs; `None` means the board
    /// this binary was built for.
    pub fn find(name: Option<&str>) -> Result<Board, BoardError> {
        let name = match name.or(built_for()) {
            Some(n) => n,
            None => return Err(BoardError::NoDefault),
        };
        if name.contains('/') || name.ends_with(".toml") {
            return Board::load(Path::new(name));
        }
        let candidates: Vec<PathBuf> = board_dirs()
            .into_iter()
            .map(|d| d.join(name).join("board.toml"))
            .collect();
        match candidates.iter().find(|p| p.is_file()) {
            Some(p) => Board::load(p),
            None => Err(BoardError::NotFound {
                name: name.to_string(),
                tried: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Read and validate a `board.toml`.
    pub fn load(path: &Path) -> Result<Board, BoardError> {
        let text = std::fs::read_to_string(path).map_err(|source| BoardError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Board::parse(&text, path)
    }

    /// Parse `board.toml` text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Board, BoardError> {
        let raw: RawBoard = toml::from_str(text).map_err(|e| BoardError::Parse {
            path: path.to_path_buf(),
            // toml's message names the key and shows the offending line.
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |key: &str, message: String| BoardError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                format!(
                    "expected a non-empty name of letters, digits, - and _, got {:?}",
                    raw.name
                ),
            ));
        }
        if parse_glibc(&raw.build.glibc).is_none() {
            return Err(invalid(
                "build.glibc",
                format!(
                    "expected MAJOR.MINOR like \"2.31\", got {:?}",
                    raw.build.glibc
                ),
            ));
        }
        if raw.build.target.split('-').count() < 3 {
            return Err(invalid(
                "build.target",
                format!(
                    "expected a target triple like \"aarch64-unknown-linux-gnu\", got {:?}",
                    raw.build.target
                ),
            ));
        }
        let arch = raw.build.target.split('-').next().unwrap_or_default();
        let mut cpu_features = Vec::new();
        for (i, f) in raw.cpu.features.iter().enumerate() {
            let isa = Isa::parse(f).ok_or_else(|| {
                invalid(
                    &format!("cpu.features[{i}]"),
                    format!(
                        "unknown kernel tier {f:?}; expected one of {}",
                        Isa::ALL.map(|i| i.name()).join(", ")
                    ),
                )
            })?;
            if isa_arch(isa).is_some_and(|a| a != arch) {
                return Err(invalid(
                    &format!("cpu.features[{i}]"),
                    format!("{f:?} is not a feature of {arch} (build.target)"),
                ));
            }
            cpu_features.push(isa);
        }
        if raw.cpu.threads == 0 || raw.cpu.threads > 256 {
            return Err(invalid(
                "cpu.threads",
                format!("expected 1..=256, got {}", raw.cpu.threads),
            ));
        }
        Ok(Board {
            name: raw.name,
            description: raw.description,
            path: path.to_path_buf(),
            build: raw.build,
            cpu_features,
            threads: raw.cpu.threads,
            camera: raw.devices.camera,
            serial: raw.devices.serial,
            config: raw.config,
        })
    }

    /// `base` (a `spotter.toml`) with this board's `[config]` merged over it: tables merge key
    /// by key, anything else is replaced.
    pub fn merged_config(&self, base: &toml::Table) -> toml::Table {
        let mut out = base.clone();
        merge_tables(&mut out, &self.config);
        out
    }
}

fn merge_tables(into: &mut toml::Table, from: &toml::Table) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge_tables(a, b),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The architecture (first part of a target triple) a tier belongs to; `None` for scalar.
fn isa_arch(isa: Isa) -> Option<&'static str> {
    match isa {
        Isa::Scalar => None,
        Isa::Avx2 | Isa::AvxVnni | Isa::Avx512Vnni => Some("x86_64"),
        Isa::Neon | Isa::Dotprod => Some("aarch64"),
    }
}

/// `"2.31"` → `(2, 31)`.
pub fn parse_glibc(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// How bad a finding of [`check_cpu`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    /// Runs, but not as the board's build intended (e.g. slower kernels).
    Warning,
    /// This binary cannot work here (wrong architecture, compiled-in feature missing).
    Error,
}

/// One line of the start-up check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

/// What the running machine offers, as far as the board check cares. Separate from the
/// detection so the comparison is testable for any CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCpu {
    /// `std::env::consts::ARCH` of the running binary (`x86_64`, `aarch64`, `arm`).
    pub arch: String,
    /// Tiers this CPU can run.
    pub available: Vec<Isa>,
    /// Tiers the binary was compiled to require (`-C target-feature`/`target-cpu`).
    pub compiled_in: Vec<Isa>,
    /// Cores available to the process.
    pub cores: usize,
}

impl HostCpu {
    /// The running process and CPU.
    pub fn detect() -> HostCpu {
        HostCpu {
            arch: std::env::consts::ARCH.to_string(),
            available: Isa::available(),
            compiled_in: compiled_in_tiers(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Tiers whose instructions the compiler may emit anywhere in this binary.
fn compiled_in_tiers() -> Vec<Isa> {
    let mut v = Vec::new();
    if cfg!(all(target_arch = "x86_64", target_feature = "avx2")) {
        v.push(Isa::Avx2);
    }
    if cfg!(all(target_arch = "x86_64", target_feature = "avx512vnni")) {
        v.push(Isa::Avx512Vnni);
    }
    if cfg!(all(target_arch = "aarch64", target_feature = "dotprod")) {
        v.push(Isa::Dotprod);
    }
    v
}

/// Triple architecture → `std::env::consts::ARCH`.
fn arch_of_target(target: &str) -> &str {
    let first = target.split('-').next().unwrap_or_default();
    if first.starts_with("armv7") || first.starts_with("arm") {
        "arm"
    } else {
        first
    }
}

/// Compare the board's expectations with the running CPU (see [`check_cpu_with`]).
pub fn check_cpu(board: &Board) -> Vec<Finding> {
    check_cpu_with(board, &HostCpu::detect())
}

/// The board check, I/O-free: one finding per expectation, worst first.
pub fn check_cpu_with(board: &Board, host: &HostCpu) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, message: String| out.push(Finding { severity, message });
    let want_arch = arch_of_target(&board.build.target);
    if want_arch != host.arch {
        push(
            Severity::Error,
            format!(
                "board {} is {} ({}), but this binary runs on {}: use the build for this machine",
                board.name, want_arch, board.build.target, host.arch
            ),
        );
    }
    for isa in &host.compiled_in {
        if !host.available.contains(isa) {
            push(
                Severity::Error,
                format!(
                    "this binary was compiled to require {isa}, which this CPU lacks: it may \
                     crash with an illegal instruction; rebuild for this board without TARGET_CPU"
                ),
            );
        }
    }
    if want_arch == host.arch {
        let missing: Vec<&str> = board
            .cpu_features
            .iter()
            .filter(|f| !host.available.contains(f))
            .map(|f| f.name())
            .collect();
        let best = host.available.iter().max().copied().unwrap_or(Isa::Scalar);
        if missing.is_empty() {
            let expected: Vec<&str> = board.cpu_features.iter().map(|f| f.name()).collect();
            push(
                Severity::Info,
                format!(
                    "CPU has every kernel tier board {} expects ({}); kernels use {best}",
                    board.name,
                    if expected.is_empty() {
                        "scalar".to_string()
                    } else {
                        expected.join(", ")
                    }
                ),
            );
        } else {
            push(
                Severity::Warning,
                format!(
                    "board {} expects CPU feature(s) {} that this CPU lacks (it has: {}); \
                     is this really a {}? Inference falls back to the {best} kernels and is \
                     slower than on the board; install the build for this board instead",
                    board.name,
                    missing.join(", "),
                    host.available
                        .iter()
                        .map(|i| i.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    board.description_or_name(),
                ),
            );
        }
    }
    if host.cores < board.threads {
        push(
            Severity::Warning,
            format!(
                "board {} defaults to {} inference threads but only {} core(s) are available",
                board.name, board.threads, host.cores
            ),
        );
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

impl Board {
    fn description_or_name(&self) -> &str {
        if self.description.is_empty() {
            &self.name
        } else {
            &self.description
        }
    }
}

/// The running C library's version (`gnu_get_libc_version`), on glibc targets.
pub fn running_glibc() -> Option<String> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn gnu_get_libc_version() -> *const std::ffi::c_char;
        }
        // SAFETY: glibc documents gnu_get_libc_version as returning a pointer to a static,
        // NUL-terminated string that lives for the whole process; it takes no arguments.
        let s = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
        Some(s.to_string_lossy().into_owned())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Info => "ok",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        };
        write!(f, "{tag}: {}", self.message)
    }
}

/// Every board under `dir` (`dir/NAME/board.toml`), sorted by name; unreadable ones are errors.
pub fn list(dir: &Path) -> Result<BTreeMap<String, Board>, BoardError> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|source| BoardError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let p = e.path().join("board.toml");
        if p.is_file() {
            let b = Board::load(&p)?;
            out.insert(b.name.clone(), b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RPI5: &str = r#"
name = "rpi5"
description = "Raspberry Pi 5"
[build]
target = "aarch64-unknown-linux-gnu"
glibc = "2.31"
deb_arch = "arm64"
[cpu]
features = ["neon", "dotprod"]
threads = 4
[devices]
camera = "/dev/video0"
[config]
threads = 4
[config.http]
listen = "0.0.0.0:8080"
"#;

    fn pi4_host() -> HostCpu {
        HostCpu {
            arch: "aarch64".into(),
            available: vec![Isa::Scalar, Isa::Neon],
            compiled_in: vec![],
            cores: 4,
        }
    }

    #[test]
    fn parses_board() {
        let b = Board::parse(RPI5, Path::new("boards/rpi5/board.toml")).unwrap();
        assert_eq!(b.name, "rpi5");
        assert_eq!(b.cpu_features, vec![Isa::Neon, Isa::Dotprod]);
        assert_eq!(b.threads, 4);
        assert_eq!(b.camera.as_deref(), Some("/dev/video0"));
        assert_eq!(b.serial, None);
        assert_eq!(parse_glibc(&b.build.glibc), Some((2, 31)));
    }

    #[test]
    fn errors_name_file_and_key() {
        let bad = RPI5.replace("\"dotprod\"", "\"sse9\"");
        let e = Board::parse(&bad, Path::new("b/board.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b/board.toml") && e.contains("cpu.features[1]"),
            "{e}"
        );
        let bad = RPI5.replace("\"2.31\"", "\"2\"");
        let e = Board::parse(&bad, Path::new("b/board.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("build.glibc"), "{e}");
        let bad = RPI5.replace("threads = 4\n[devices]", "threadz = 4\n[devices]");
        let e = Board::parse(&bad, Path::new("b/board.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("b/board.toml") && e.contains("threadz"), "{e}");
        let bad = RPI5.replace("\"neon\", ", "\"avx2\", ");
        let e = Board::parse(&bad, Path::new("b/board.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a feature of aarch64"), "{e}");
    }

    #[test]
    fn rpi5_build_on_a_pi4_warns_about_dotprod() {
        let b = Board::parse(RPI5, Path::new("rpi5.toml")).unwrap();
        let f = check_cpu_with(&b, &pi4_host());
        assert_eq!(f[0].severity, Severity::Warning, "{f:?}");
        assert!(f[0].message.contains("dotprod"), "{}", f[0]);
        assert!(
            f[0].message.contains("falls back to the neon kernels"),
            "{}",
            f[0]
        );
        // The same host with dotprod is fine.
        let mut pi5 = pi4_host();
        pi5.available.push(Isa::Dotprod);
        let f = check_cpu_with(&b, &pi5);
        assert!(f.iter().all(|f| f.severity == Severity::Info), "{f:?}");
    }

    #[test]
    fn compiled_in_feature_missing_is_an_error() {
        let b = Board::parse(RPI5, Path::new("rpi5.toml")).unwrap();
        let mut host = pi4_host();
        host.compiled_in = vec![Isa::Dotprod];
        let f = check_cpu_with(&b, &host);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("illegal instruction"), "{}", f[0]);
    }

    #[test]
    fn wrong_architecture_is_an_error() {
        let b = Board::parse(RPI5, Path::new("rpi5.toml")).unwrap();
        let host = HostCpu {
            arch: "x86_64".into(),
            available: vec![Isa::Scalar, Isa::Avx2],
            compiled_in: vec![],
            cores: 2,
        };
        let f = check_cpu_with(&b, &host);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("x86_64"));
        assert!(f.iter().any(|f| f.message.contains("only 2 core")));
    }

    #[test]
    fn config_merge_is_deep() {
        let b = Board::parse(RPI5, Path::new("rpi5.toml")).unwrap();
        let base: toml::Table = toml::from_str(
            "threads = 1\nmodel = \"m.tflite\"\n[http]\nlisten = \"127.0.0.1:8080\"\nenabled = true\n",
        )
        .unwrap();
        let m = b.merged_config(&base);
        assert_eq!(m["threads"].as_integer(), Some(4));
        assert_eq!(m["model"].as_str(), Some("m.tflite"));
        assert_eq!(m["http"]["listen"].as_str(), Some("0.0.0.0:8080"));
        assert_eq!(m["http"]["enabled"].as_bool(), Some(true));
    }

    #[test]
    fn shipped_boards_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
        let boards = list(&dir).unwrap();
        for name in [
            "rpi4",
            "rpi5",
            "rpi-zero2",
            "jetson-nano",
            "jetson-orin",
            "x86_64",
        ] {
            let b = boards.get(name).unwrap_or_else(|| panic!("board {name}"));
            assert_eq!(
                b.path.parent().and_then(|p| p.file_name()),
                Some(std::ffi::OsStr::new(name)),
                "folder name = board name"
            );
        }
        assert_eq!(boards["jetson-nano"].build.glibc, "2.27");
        assert_eq!(
            boards["rpi-zero2"].build.target,
            "armv7-unknown-linux-gnueabihf"
        );
    }
}
