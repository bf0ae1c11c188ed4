//! The limits every YAML the host parses from outside (agent and server configuration files, the
//! CLI's `--values` files) goes through before a YAML parser sees it: size, and nesting depth.
//!
//! Depth is checked by a linear scan of the text, because the cost is in the parser: libyaml (under
//! serde_yaml) rechecks every pending flow level at every token, so `[[[[…]]]]` costs time quadratic in
//! its depth (200 KB took 32 s). The scan is deliberately conservative — it counts every flow bracket
//! that opens a value and every block level a line or a compact `- - -` opens — and never looks
//! inside quoted scalars, comments or block scalars (`|`, `>`), so text in them cannot trip it.
//!
//! What it must never do: accept a document the parser would then nest deeper than [`MAX_DEPTH`].

/// Deepest nesting accepted, flow and block levels together. Real configuration and Helm values nest a
/// few dozen levels at most; serde_yaml itself refuses to deserialize past 128.
pub const MAX_DEPTH: usize = 100;

/// Largest `--values` file accepted (agent configuration files have their own, smaller cap).
pub const MAX_VALUES_FILE_SIZE: usize = 8 << 20;

/// A YAML text refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlLimitError {
    #[error("{file}: the file is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        file: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "{file}:{line}:{column}: YAML nested more than {MAX_DEPTH} levels deep; refusing to parse it"
    )]
    TooDeep {
        file: String,
        line: usize,
        column: usize,
    },
}

impl YamlLimitError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            YamlLimitError::TooLarge { .. } => None,
            YamlLimitError::TooDeep { line, .. } => Some(*line),
        }
    }

    /// The 1-based column the error points at, if any.
    pub fn column(&self) -> Option<usize> {
        match self {
            YamlLimitError::TooLarge { .. } => None,
            YamlLimitError::TooDeep { column, .. } => Some(*column),
        }
    }
}

/// Refuse `text` (named `file` in errors) if it is over `max_bytes` or nests deeper than [`MAX_DEPTH`].
pub fn check_limits(text: &str, file: &str, max_bytes: usize) -> Result<(), YamlLimitError> {
    if text.len() > max_bytes {
        return Err(YamlLimitError::TooLarge {
            file: file.to_owned(),
            size: text.len(),
            limit: max_bytes,
        });
    }
    match deepest_point(text, MAX_DEPTH) {
        None => Ok(()),
        Some((line, column)) => Err(YamlLimitError::TooDeep {
            file: file.to_owned(),
            line,
            column,
        }),
    }
}

/// Where (1-based line and column) the nesting first goes past `max`, if it does.
fn deepest_point(text: &str, max: usize) -> Option<(usize, usize)> {
    let mut scan = Scan::default();
    for (index, line) in text.lines().enumerate() {
        if let Some(column) = scan.line(line, max) {
            return Some((index + 1, column + 1));
        }
    }
    None
}

#[derive(Debug, Default)]
struct Scan {
    /// Indentation columns of the open block levels.
    blocks: Vec<usize>,
    /// Open `[` and `{`.
    flow: usize,
    /// Inside a quoted scalar that continues on the next line: its quote character.
    quote: Option<char>,
    /// Inside a block scalar: lines indented more than this belong to it.
    block_scalar: Option<usize>,
}

impl Scan {
    /// Scan one line; the column where the depth passes `max`, if it does.
    fn line(&mut self, line: &str, max: usize) -> Option<usize> {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return None;
            }
            self.block_scalar = None;
        }
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut i = 0;
        if self.quote.is_none() && self.flow == 0 {
            if blank {
                return None;
            }
            // A line at this indentation closes every block level indented as much or more.
            while self.blocks.last().is_some_and(|&open| open >= indent) {
                self.blocks.pop();
            }
            self.blocks.push(indent);
            i = indent;
            // Compact nesting on one line: `- - - x`, `? - x`.
            while let Some(&(at, c)) = chars.get(i) {
                let followed_by_space = chars.get(i + 1).is_none_or(|&(_, n)| n == ' ');
                if !matches!(c, '-' | '?') || !followed_by_space {
                    break;
                }
                i += 1;
                while chars.get(i).is_some_and(|&(_, c)| c == ' ') {
                    i += 1;
                }
                self.blocks.push(chars.get(i).map_or(at + 2, |&(at, _)| at));
                if self.depth() > max {
                    return Some(at);
                }
            }
            if self.depth() > max {
                return Some(indent);
            }
        }
        // Where a value may start: a flow bracket or a quote here opens something.
        let mut at_value_start = self.quote.is_none();
        let mut last_token = None;
        while let Some(&(at, c)) = chars.get(i) {
            i += 1;
            if let Some(quote) = self.quote {
                match (quote, c) {
                    ('"', '\\') => i += 1,
                    ('\'', '\'') if chars.get(i).is_some_and(|&(_, n)| n == '\'') => i += 1,
                    (q, c) if q == c => {
                        self.quote = None;
                        at_value_start = false;
                    }
                    _ => {}
                }
                continue;
            }
            match c {
                ' ' | '\t' => continue,
                '#' if at == 0 || line[..at].ends_with([' ', '\t']) => break,
                '"' | '\'' if at_value_start => {
                    self.quote = Some(c);
                    continue;
                }
                '[' | '{' if at_value_start || self.flow > 0 => {
                    self.flow += 1;
                    if self.depth() > max {
                        return Some(at);
                    }
                    at_value_start = true;
                }
                ']' | '}' if self.flow > 0 => {
                    self.flow -= 1;
                    at_value_start = false;
                }
                ',' if self.flow > 0 => at_value_start = true,
                ':' if chars.get(i).is_none_or(|&(_, n)| n == ' ') => at_value_start = true,
                '-' if at_value_start && chars.get(i).is_none_or(|&(_, n)| n == ' ') => {}
                _ => at_value_start = false,
            }
            last_token = Some(c);
        }
        // `key: |` or `- >-` opens a block scalar: the more-indented lines after it are its text.
        if self.quote.is_none() && self.flow == 0 {
            let trimmed = strip_comment(line).trim_end();
            let header = trimmed.rsplit(' ').next().unwrap_or(trimmed);
            if header.starts_with(['|', '>'])
                && header[1..]
                    .chars()
                    .all(|c| matches!(c, '+' | '-' | '1'..='9'))
                && matches!(last_token, Some('|' | '>' | '+' | '-' | '1'..='9'))
            {
                self.block_scalar = Some(indent);
            }
        }
        None
    }

    fn depth(&self) -> usize {
        self.blocks.len() + self.flow
    }
}

fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_with_its_line_and_column() {
        let text = format!("values:\n  list: {}{}\n", "[".repeat(200), "]".repeat(200));
        let error = check_limits(&text, "values.yaml", usize::MAX).unwrap_err();
        assert_eq!(
            error,
            YamlLimitError::TooDeep {
                file: "values.yaml".into(),
                line: 2,
                column: 9 + MAX_DEPTH - 2,
            }
        );
        assert!(error.to_string().starts_with("values.yaml:2:"), "{error}");
    }

    #[test]
    fn deep_block_nesting_is_refused_compact_or_indented() {
        let compact = format!("{}x\n", "- ".repeat(150));
        assert!(check_limits(&compact, "c.yaml", usize::MAX).is_err());
        let indented: String = (0..150)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let error = check_limits(&indented, "i.yaml", usize::MAX).unwrap_err();
        assert_eq!(error.line(), Some(MAX_DEPTH + 1));
    }

    #[test]
    fn brackets_in_text_do_not_count() {
        let text = format!(
            "a: \"{open}\"\nb: '{open}'\nc: x{open}\n# {open}\nd: |\n  {open}\n  {open}\ne: [1, [2, {{f: g}}]]\n",
            open = "[".repeat(500)
        );
        check_limits(&text, "t.yaml", usize::MAX).unwrap();
    }

    #[test]
    fn ordinary_configuration_passes() {
        let text = "gitops:\n  manifest_projects:\n  - id: a/b\n    paths:\n    - glob: '**/*.yaml'\n      \
                    renderer: {helm: {chart: c, values: [{a: 1}]}}\nlist:\n- - a\n  - b\n";
        check_limits(text, "config.yaml", usize::MAX).unwrap();
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_scanning() {
        let error = check_limits("a: 1\n", "v.yaml", 3).unwrap_err();
        assert!(matches!(
            error,
            YamlLimitError::TooLarge {
                size: 5,
                limit: 3,
                ..
            }
        ));
    }
}
