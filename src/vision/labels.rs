//! Class labels from three auto-detected formats:
//! - `coco_labels.txt` style: `0  person` (id, whitespace, name; ids may skip);
//! - one name per line: index = line number (0-based); `???` is a placeholder (no name) but
//!   still takes its line;
//! - TF Object Detection API `label_map.pbtxt`: `item { id: 1 name: '/m/01g317'
//!   display_name: 'person' }` (quotes `'` or `"`, `display_name` preferred over `name`, any
//!   field order, `#` comments).

use std::path::Path;

use crate::error::InputError;

/// Largest accepted class id (keeps a typo from allocating gigabytes).
const MAX_ID: u64 = 1_000_000;

/// Class id → name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    names: Vec<Option<String>>,
}

/// The format a label file was detected as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelFormat {
    IdName,
    PerLine,
    Pbtxt,
}

impl Labels {
    /// Read and parse a label file; errors name the file and line.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse label text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InputError> {
        let err = |line: usize, what: String| InputError::Labels {
            path: path.to_path_buf(),
            line,
            what,
        };
        match detect(text) {
            LabelFormat::Pbtxt => parse_pbtxt(text).map_err(|(l, w)| err(l, w)),
            LabelFormat::IdName => parse_id_name(text).map_err(|(l, w)| err(l, w)),
            LabelFormat::PerLine => Ok(parse_per_line(text)),
        }
    }

    /// Name of `class_id`, `None` when absent or a `???` placeholder.
    pub fn get(&self, class_id: usize) -> Option<&str> {
        self.names.get(class_id).and_then(|n| n.as_deref())
    }

    /// One past the largest id with a name or a line.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.iter().all(Option::is_none)
    }

    fn set(&mut self, id: usize, name: Option<String>) {
        if self.names.len() <= id {
            self.names.resize(id + 1, None);
        }
        self.names[id] = name;
    }
}

/// Detect the format: pbtxt when the first token is `item` followed by `{` (or `:` `{`);
/// id-name when the first non-empty line starts with digits then whitespace; else per line.
pub fn detect(text: &str) -> LabelFormat {
    let first = text
        .lines()
        .map(|l| strip_comment(l).trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if let Some(rest) = first.strip_prefix("item") {
        let rest = rest.trim_start();
        if rest.is_empty() || rest.starts_with('{') || rest.starts_with(':') {
            return LabelFormat::Pbtxt;
        }
    }
    let first_raw = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let digits = first_raw.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0
        && first_raw[digits..].starts_with(|c: char| c.is_whitespace())
        && !first_raw[digits..].trim().is_empty()
    {
        return LabelFormat::IdName;
    }
    LabelFormat::PerLine
}

/// Cut a `#` comment (outside quotes) from a pbtxt line.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '#' => return &line[..i],
                '\'' | '"' => quote = Some(c),
                _ => {}
            },
        }
    }
    line
}

fn parse_id_name(text: &str) -> Result<Labels, (usize, String)> {
    let mut labels = Labels::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let name = line[digits..].trim();
        if digits == 0 || name.is_empty() || !line[digits..].starts_with(char::is_whitespace) {
            return Err((
                line_no,
                format!("expected '<id> <name>' (like '0  person'), got '{line}'"),
            ));
        }
        let id: u64 = line[..digits].parse().map_err(|_| {
            (
                line_no,
                format!("class id '{}' is too large", &line[..digits]),
            )
        })?;
        if id > MAX_ID {
            return Err((
                line_no,
                format!("class id {id} is too large (max {MAX_ID})"),
            ));
        }
        let id = id as usize;
        if labels.get(id).is_some() {
            return Err((line_no, format!("class id {id} appears twice")));
        }
        labels.set(id, Some(name.to_string()));
    }
    Ok(labels)
}

fn parse_per_line(text: &str) -> Labels {
    let mut labels = Labels::default();
    for (i, raw) in text.lines().enumerate() {
        let name = raw.trim();
        let name = if name.is_empty() || name == "???" {
            None
        } else {
            Some(name.to_string())
        };
        labels.set(i, name);
    }
    // Trailing empty lines are not classes.
    while labels.names.last().is_some_and(Option::is_none) {
        labels.names.pop();
    }
    labels
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Open,
    Close,
    Colon,
}

/// Tokens with their 1-based line numbers.
fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = strip_comment(raw);
        let mut chars = line.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            match c {
                c if c.is_whitespace() || c == ',' || c == ';' => {}
                '{' => out.push((Tok::Open, line_no)),
                '}' => out.push((Tok::Close, line_no)),
                ':' => out.push((Tok::Colon, line_no)),
                '\'' | '"' => {
                    let mut s = String::new();
                    let mut closed = false;
                    while let Some((_, d)) = chars.next() {
                        if d == c {
                            closed = true;
                            break;
                        }
                        if d == '\\' {
                            match chars.next() {
                                Some((_, 'n')) => s.push('\n'),
                                Some((_, 't')) => s.push('\t'),
                                Some((_, e)) => s.push(e),
                                None => break,
                            }
                        } else {
                            s.push(d);
                        }
                    }
                    if !closed {
                        return Err((line_no, format!("unterminated string in '{}'", raw.trim())));
                    }
                    out.push((Tok::Str(s), line_no));
                }
                c if c.is_alphanumeric() || c == '_' || c == '-' || c == '+' || c == '.' => {
                    let mut end = start + c.len_utf8();
                    while let Some(&(j, d)) = chars.peek() {
                        if d.is_alphanumeric() || d == '_' || d == '-' || d == '+' || d == '.' {
                            end = j + d.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    let word = &line[start..end];
                    let tok =
                        if word.starts_with(|d: char| d.is_ascii_digit() || d == '-' || d == '+') {
                            Tok::Num(word.to_string())
                        } else {
                            Tok::Ident(word.to_string())
                        };
                    out.push((tok, line_no));
                }
                other => {
                    return Err((line_no, format!("unexpected character '{other}'")));
                }
            }
        }
    }
    Ok(out)
}

fn parse_pbtxt(text: &str) -> Result<Labels, (usize, String)> {
    let toks = tokenize(text)?;
    let last_line = text.lines().count().max(1);
    let mut labels = Labels::default();
    let mut pos = 0;
    let line_at = |p: usize| toks.get(p).map_or(last_line, |t| t.1);
    while pos < toks.len() {
        let (tok, line) = &toks[pos];
        match tok {
            Tok::Ident(w) if w == "item" => {}
            _ => return Err((*line, format!("expected 'item {{', got {}", describe(tok)))),
        }
        let item_line = *line;
        pos += 1;
        if matches!(toks.get(pos), Some((Tok::Colon, _))) {
            pos += 1;
        }
        if !matches!(toks.get(pos), Some((Tok::Open, _))) {
            return Err((line_at(pos), "expected '{' after 'item'".into()));
        }
        pos += 1;
        let (mut id, mut name, mut display) = (None::<(u64, usize)>, None, None);
        loop {
            let Some((tok, line)) = toks.get(pos) else {
                return Err((
                    last_line,
                    format!("item opened on line {item_line} is not closed"),
                ));
            };
            let line = *line;
            match tok {
                Tok::Close => {
                    pos += 1;
                    break;
                }
                Tok::Ident(field) => {
                    pos += 1;
                    let has_colon = matches!(toks.get(pos), Some((Tok::Colon, _)));
                    if has_colon {
                        pos += 1;
                    }
                    match toks.get(pos) {
                        Some((Tok::Open, _)) => {
                            // Nested message (e.g. keypoints): skip it.
                            let mut depth = 0usize;
                            while let Some((t, _)) = toks.get(pos) {
                                pos += 1;
                                match t {
                                    Tok::Open => depth += 1,
                                    Tok::Close => {
                                        depth -= 1;
                                        if depth == 0 {
                                            break;
                                        }
                                    }
                                    _ => {}
                                }
                            }
                            if depth != 0 {
                                return Err((last_line, format!("'{field}' block is not closed")));
                            }
                        }
                        Some((value, vline)) if has_colon => {
                            let vline = *vline;
                            pos += 1;
                            match (field.as_str(), value) {
                                ("id", Tok::Num(n)) => {
                                    let v: u64 = n.parse().map_err(|_| {
                                        (
                                            vline,
                                            format!("id must be a non-negative integer, got '{n}'"),
                                        )
                                    })?;
                                    if v > MAX_ID {
                                        return Err((
                                            vline,
                                            format!("id {v} is too large (max {MAX_ID})"),
                                        ));
                                    }
                                    id = Some((v, vline));
                                }
                                ("id", other) => {
                                    return Err((
                                        vline,
                                        format!("id must be an integer, got {}", describe(other)),
                                    ))
                                }
                                ("name", Tok::Str(s)) => name = Some(s.clone()),
                                ("display_name", Tok::Str(s)) => display = Some(s.clone()),
                                ("name" | "display_name", other) => {
                                    return Err((
                                        vline,
                                        format!(
                                            "{field} must be a quoted string, got {}",
                                            describe(other)
                                        ),
                                    ))
                                }
                                (_, Tok::Str(_) | Tok::Num(_) | Tok::Ident(_)) => {}
                                (_, other) => {
                                    return Err((
                                        vline,
                                        format!("unexpected {} after '{field}:'", describe(other)),
                                    ))
                                }
                            }
                        }
                        other => {
                            return Err((
                                other.map_or(line, |t| t.1),
                                format!("expected ':' and a value after '{field}'"),
                            ))
                        }
                    }
                }
                other => {
                    return Err((
                        line,
                        format!("expected a field name or '}}', got {}", describe(other)),
                    ))
                }
            }
        }
        let Some((id, id_line)) = id else {
            return Err((item_line, "item has no id".into()));
        };
        let Some(label) = display.or(name) else {
            return Err((
                item_line,
                format!("item with id {id} has no name or display_name"),
            ));
        };
        if labels.get(id as usize).is_some() {
            return Err((id_line, format!("id {id} appears twice")));
        }
        labels.set(id as usize, Some(label));
    }
    Ok(labels)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Num(s) => format!("number {s}"),
        Tok::Open => "'{'".into(),
        Tok::Close => "'}'".into(),
        Tok::Colon => "':'".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Labels, InputError> {
        Labels::parse(t, Path::new("labels.txt"))
    }

    #[test]
    fn coco_id_name_with_gaps_and_spaces() {
        let l = parse("0  person\n1  bicycle\n\n9  traffic light\n").expect("parse");
        assert_eq!(detect("0  person\n"), LabelFormat::IdName);
        assert_eq!(l.get(0), Some("person"));
        assert_eq!(l.get(1), Some("bicycle"));
        assert_eq!(l.get(2), None);
        assert_eq!(l.get(9), Some("traffic light"));
        assert_eq!(l.get(10), None);
        assert_eq!(l.len(), 10);
    }

    #[test]
    fn repo_coco_labels_parse() {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/coco_labels.txt");
        let l = Labels::load(&p).expect("coco labels");
        assert_eq!(l.get(0), Some("person"));
    }

    #[test]
    fn coco_bad_line_names_file_and_line() {
        let e = parse("0  person\n1  bicycle\ncar\n").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "labels.txt:3: expected '<id> <name>' (like '0  person'), got 'car'"
        );
        let e = parse("0  person\n0  again\n").expect_err("dup");
        assert!(e.to_string().starts_with("labels.txt:2:"), "{e}");
        let e = parse("0  person\n7\n").expect_err("no name");
        assert!(e.to_string().starts_with("labels.txt:2:"), "{e}");
    }

    #[test]
    fn one_name_per_line_with_placeholder() {
        let l = parse("???\nperson\nbicycle\n???\ncar\n\n").expect("parse");
        assert_eq!(detect("???\nperson\n"), LabelFormat::PerLine);
        assert_eq!(l.get(0), None);
        assert_eq!(l.get(1), Some("person"));
        assert_eq!(l.get(2), Some("bicycle"));
        assert_eq!(l.get(3), None);
        assert_eq!(l.get(4), Some("car"));
        assert_eq!(l.len(), 5);
        // Names beginning with a digit but no whitespace after it stay per-line.
        let l = parse("7up\nperson\n").expect("parse");
        assert_eq!(l.get(0), Some("7up"));
    }

    #[test]
    fn pbtxt_quotes_order_comments() {
        let text = r#"
# COCO label map
item {
  name: "/m/01g317"
  id: 1
  display_name: "person"
}
item { id: 2 name: '/m/0199g' }  # no display name
item: {
  display_name: 'traffic light' # comment after a value
  id: 10
  keypoints { id: 0 label: "nose" }
  frequency: FREQUENT
}
"#;
        assert_eq!(detect(text), LabelFormat::Pbtxt);
        let l = parse(text).expect("parse");
        assert_eq!(l.get(1), Some("person"));
        assert_eq!(l.get(2), Some("/m/0199g"));
        assert_eq!(l.get(10), Some("traffic light"));
        assert_eq!(l.get(0), None);
        assert_eq!(l.get(3), None);
    }

    #[test]
    fn pbtxt_errors_name_line() {
        let e = parse("item {\n  name: 'x'\n}\n").expect_err("no id");
        assert_eq!(e.to_string(), "labels.txt:1: item has no id");
        let e = parse("item {\n  id: 1\n  name: x\n}\n").expect_err("unquoted");
        assert!(e.to_string().starts_with("labels.txt:3:"), "{e}");
        let e = parse("item {\n  id: one\n  name: 'x'\n}\n").expect_err("bad id");
        assert!(e.to_string().starts_with("labels.txt:2:"), "{e}");
        let e = parse("item {\n  id: 1\n  name: 'x\n}\n").expect_err("unterminated");
        assert!(e.to_string().starts_with("labels.txt:3:"), "{e}");
        let e = parse("item {\n  id: 1\n  name: 'x'\n").expect_err("unclosed");
        assert!(e.to_string().contains("not closed"), "{e}");
        let e = parse("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }\n").expect_err("dup");
        assert!(e.to_string().starts_with("labels.txt:2:"), "{e}");
        let e = parse("item { id: -1 name: 'a' }\n").expect_err("negative");
        assert!(e.to_string().starts_with("labels.txt:1:"), "{e}");
    }

    #[test]
    fn missing_file_names_path() {
        let e = Labels::load(Path::new("/nonexistent/labels.txt")).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/labels.txt"));
    }
}
