//! Splits template source into tokens the way Go's text/template/parse lexer does: text between
//! actions, `{{-`/`-}}` whitespace trimming, comments, and the operands inside actions.
//! Trimming is applied here, so the parser never sees trim markers.

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    /// A function name or keyword-like identifier (`if`, `printf`, `true`…).
    Ident(String),
    /// `.name` (the name without its dot).
    Field(String),
    Dot,
    /// `$` or `$name` (with the `$`).
    Variable(String),
    /// A string or raw string literal, already unquoted.
    Str(String),
    /// A character constant, as its code point.
    Char(char),
    /// A number literal's source text.
    Number(String),
    Pipe,
    Assign,
    Declare,
    LeftParen,
    RightParen,
    Comma,
    Space,
    /// A printable ASCII character with no meaning in an action (Go's itemChar).
    Punct(char),
    /// A lexing error; Go's lexer reports it only when the parser reaches it.
    Error(String),
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset in the source.
    pub pos: usize,
    /// End of the token's source text (for error messages that quote it).
    pub end: usize,
    pub line: usize,
}

#[derive(Debug)]
pub struct LexError {
    pub line: usize,
    pub message: String,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    /// Set by a `-}}`: the next text starts after its leading whitespace.
    trim_next_text: bool,
    paren_depth: usize,
    /// The line of `line_mark`: tokens come in source order, so lines are counted forward
    /// from the last one rather than from the start (which made lexing quadratic).
    line_mark: std::cell::Cell<(usize, usize)>,
}

/// The tokens of `src`; a lexing error becomes a final [`Tok::Error`] token, so the parser
/// reports errors in source order, as Go's concurrent lexer and parser do.
pub fn lex(src: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
        trim_next_text: false,
        paren_depth: 0,
        line_mark: std::cell::Cell::new((0, 1)),
    };
    if let Err(e) = lexer.run() {
        let pos = lexer.pos.min(src.len());
        lexer.tokens.push(Token {
            tok: Tok::Error(e.message),
            pos,
            end: pos,
            line: e.line,
        });
    }
    lexer.tokens
}

impl<'a> Lexer<'a> {
    fn line_at(&self, pos: usize) -> usize {
        let pos = pos.min(self.src.len());
        let (mark, line) = self.line_mark.get();
        let line = if pos >= mark {
            line + self.src[mark..pos].matches('\n').count()
        } else {
            1 + self.src[..pos].matches('\n').count()
        };
        self.line_mark.set((pos, line));
        line
    }

    fn emit(&mut self, tok: Tok, pos: usize) {
        let line = self.line_at(pos);
        let end = self.pos.max(pos);
        self.tokens.push(Token {
            tok,
            pos,
            end,
            line,
        });
    }

    fn err<T>(&self, pos: usize, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            line: self.line_at(pos),
            message: message.into(),
        })
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let found = self.rest().find(LEFT);
            let end = found.map_or(self.src.len(), |i| self.pos + i);
            let mut text = &self.src[start..end];
            if self.trim_next_text {
                text = text.trim_start_matches(is_space);
                self.trim_next_text = false;
            }
            let Some(_) = found else {
                if !text.is_empty() {
                    self.emit(Tok::Text(text.to_string()), start);
                }
                self.emit(Tok::Eof, self.src.len());
                return Ok(());
            };
            let after = &self.src[end + LEFT.len()..];
            let left_trim = after.starts_with('-') && after[1..].starts_with(is_space);
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                let text_pos = self.src[start..].find(text).map_or(start, |i| start + i);
                self.emit(Tok::Text(text.to_string()), text_pos);
            }
            self.pos = end + LEFT.len() + if left_trim { 2 } else { 0 };
            if self.rest().starts_with("/*") {
                self.comment(end)?;
                continue;
            }
            self.emit(Tok::LeftDelim, end);
            self.paren_depth = 0;
            self.inside_action(end)?;
        }
    }

    fn comment(&mut self, delim_pos: usize) -> Result<(), LexError> {
        let Some(close) = self.rest().find("*/") else {
            return self.err(delim_pos, "unclosed comment");
        };
        self.pos += close + 2;
        if self.rest().starts_with(RIGHT) {
            self.pos += RIGHT.len();
            return Ok(());
        }
        if self.rest().starts_with(" -}}") || self.rest().starts_with("\t-}}") {
            self.pos += 4;
            self.trim_next_text = true;
            return Ok(());
        }
        self.err(delim_pos, "comment ends before closing delimiter")
    }

    fn inside_action(&mut self, delim_pos: usize) -> Result<(), LexError> {
        loop {
            let rest = self.rest();
            if rest.starts_with(RIGHT) {
                if self.paren_depth > 0 {
                    return self.err(self.pos, "unclosed left paren");
                }
                self.emit(Tok::RightDelim, self.pos);
                self.pos += RIGHT.len();
                return Ok(());
            }
            let Some(c) = self.peek() else {
                return self.err(delim_pos, "unclosed action");
            };
            let start = self.pos;
            match c {
                c if is_space(c) => {
                    // A space may begin a trim-marked closing delimiter ` -}}`.
                    let end = rest.find(|c: char| !is_space(c)).unwrap_or(rest.len());
                    let after = &rest[end..];
                    if after.starts_with("-}}") {
                        if self.paren_depth > 0 {
                            return self.err(self.pos, "unclosed left paren");
                        }
                        self.emit(Tok::RightDelim, start + end);
                        self.pos += end + 3;
                        self.trim_next_text = true;
                        return Ok(());
                    }
                    self.pos += end;
                    self.emit(Tok::Space, start);
                }
                '\n' => unreachable!("newline is a space"),
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start);
                }
                ':' => {
                    if !rest.starts_with(":=") {
                        return self.err(start, "expected :=");
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start);
                }
                ',' => {
                    self.pos += 1;
                    self.emit(Tok::Comma, start);
                }
                '"' => {
                    let s = self.quoted(start)?;
                    self.emit(Tok::Str(s), start);
                }
                '`' => {
                    let Some(end) = rest[1..].find('`') else {
                        return self.err(start, "unterminated raw quoted string");
                    };
                    let s = rest[1..1 + end].to_string();
                    self.pos += end + 2;
                    self.emit(Tok::Str(s), start);
                }
                '\'' => {
                    let ch = self.char_constant(start)?;
                    self.emit(Tok::Char(ch), start);
                }
                '$' => {
                    let len = 1 + rest[1..].find(|c| !is_alnum(c)).unwrap_or(rest.len() - 1);
                    self.pos += len;
                    self.emit(Tok::Variable(rest[..len].to_string()), start);
                    self.check_terminator(start)?;
                }
                '.' => {
                    // A number like .5 is lexed as a number.
                    if rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
                        self.number(start)?;
                        continue;
                    }
                    let len = 1 + rest[1..].find(|c| !is_alnum(c)).unwrap_or(rest.len() - 1);
                    self.pos += len;
                    if len == 1 {
                        self.emit(Tok::Dot, start);
                    } else {
                        self.emit(Tok::Field(rest[1..len].to_string()), start);
                    }
                    self.check_terminator(start)?;
                }
                '+' | '-' | '0'..='9' => self.number(start)?,
                '(' => {
                    self.paren_depth += 1;
                    self.pos += 1;
                    self.emit(Tok::LeftParen, start);
                }
                ')' => {
                    if self.paren_depth == 0 {
                        return self.err(start, "unexpected right paren");
                    }
                    self.paren_depth -= 1;
                    self.pos += 1;
                    self.emit(Tok::RightParen, start);
                }
                c if is_alnum(c) => {
                    let len = rest.find(|c| !is_alnum(c)).unwrap_or(rest.len());
                    self.pos += len;
                    self.emit(Tok::Ident(rest[..len].to_string()), start);
                    self.check_terminator(start)?;
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.emit(Tok::Punct(c), start);
                }
                c => {
                    return self.err(
                        start,
                        format!("unrecognized character in action: U+{:04X} {c:?}", c as u32),
                    );
                }
            }
        }
    }

    /// After an identifier, field or variable comes a space, delimiter, `.`, `|`, `(`… as in Go.
    fn check_terminator(&self, start: usize) -> Result<(), LexError> {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(());
        };
        if is_space(c)
            || matches!(c, '.' | ',' | '|' | ':' | ')' | '(' | '=')
            || rest.starts_with(RIGHT)
        {
            return Ok(());
        }
        self.err(start, format!("bad character {:?}", c))
    }

    fn quoted(&mut self, start: usize) -> Result<String, LexError> {
        let rest = self.rest();
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut code = 0u32;
                            for _ in 0..n {
                                let Some((_, h)) = chars.next() else {
                                    return self.err(start, "unterminated quoted string");
                                };
                                let Some(d) = h.to_digit(16) else {
                                    return self.err(start, "invalid syntax in quoted string");
                                };
                                code = code * 16 + d;
                            }
                            match char::from_u32(code) {
                                Some(ch) => out.push(ch),
                                None => return self.err(start, "invalid syntax in quoted string"),
                            }
                        }
                        '0'..='7' => {
                            let mut code = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                let Some((_, h)) = chars.next() else {
                                    return self.err(start, "unterminated quoted string");
                                };
                                let Some(d) = h.to_digit(8) else {
                                    return self.err(start, "invalid syntax in quoted string");
                                };
                                code = code * 8 + d;
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return self.err(start, "invalid syntax in quoted string"),
                    }
                }
                c => out.push(c),
            }
        }
        self.err(start, "unterminated quoted string")
    }

    fn char_constant(&mut self, start: usize) -> Result<char, LexError> {
        let rest = self.rest();
        let Some(end) = rest[1..].find('\'') else {
            return self.err(start, "unterminated character constant");
        };
        // An escaped quote: '\''.
        let end = if rest[1..].starts_with("\\'") { 2 } else { end };
        let body = &rest[1..1 + end];
        self.pos += end + 2;
        let mut chars = body.chars();
        let ch = match (chars.next(), chars.next()) {
            (Some('\\'), Some(e)) => match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '\'' => '\'',
                '0' => '\0',
                _ => return self.err(start, format!("malformed character constant: '{body}'")),
            },
            (Some(c), None) => c,
            _ => return self.err(start, format!("malformed character constant: '{body}'")),
        };
        Ok(ch)
    }

    fn number(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.rest().as_bytes();
        let mut i = 0;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if i + 1 < bytes.len() && bytes[i] == b'0' {
            match bytes[i + 1] {
                b'x' | b'X' => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                b'o' | b'O' => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                b'b' | b'B' => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        while i < bytes.len() && digits.contains(&bytes[i]) {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            while i < bytes.len() && digits.contains(&bytes[i]) {
                i += 1;
            }
        }
        if !exp.is_empty() && i < bytes.len() && exp.contains(&bytes[i]) {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                i += 1;
            }
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                i += 1;
            }
        }
        let text = &self.rest()[..i];
        let next = self.rest()[i..].chars().next();
        if text.is_empty()
            || text == "+"
            || text == "-"
            || next.is_some_and(|c| is_alnum(c) || c == '.')
        {
            let end = self.rest()[i..]
                .find(|c: char| !is_alnum(c) && c != '.')
                .map_or(self.rest().len(), |e| i + e);
            return self.err(
                start,
                format!("bad number syntax: {:?}", &self.rest()[..end]),
            );
        }
        self.pos += i;
        self.emit(Tok::Number(text.to_string()), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).into_iter().map(|t| t.tok).collect()
    }

    fn fails(src: &str) -> bool {
        lex(src).iter().any(|t| matches!(t.tok, Tok::Error(_)))
    }

    #[test]
    fn trims_whitespace_around_trim_markers() {
        assert_eq!(
            toks("a  {{- .x -}}\n b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("x".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn minus_without_space_is_a_number() {
        assert_eq!(
            toks("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_vanish_and_may_trim() {
        assert_eq!(
            toks("a {{- /* c */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
        assert!(fails("{{/* c */ x}}"));
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(
            toks(r#"{{"a\n\x41" `r\n`}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Str("a\nA".into()),
                Tok::Space,
                Tok::Str("r\\n".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_in_all_bases() {
        for n in [
            "0x1F", "0o17", "0b101", "1e3", "1.5", "-2", "1_000", "0x1p-2",
        ] {
            assert_eq!(toks(&format!("{{{{{n}}}}}"))[1], Tok::Number(n.into()));
        }
        assert!(fails("{{3x}}"));
    }
}
