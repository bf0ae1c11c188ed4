//! The syntax tree and the parser that builds it, following Go's text/template/parse: actions,
//! pipelines, control structures, `define`/`block`, and the checks Go makes at parse time
//! (functions defined, variables declared, `break` inside `range`).

use std::sync::Arc;

use crate::lex::{Tok, Token, lex};
pub use crate::number::parse_number;

pub type List = Vec<Node>;

#[derive(Debug)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        name: String,
        pipe: Option<Pipe>,
        pos: usize,
        /// `{{template "name" pipeline}}`, as Go names the node in errors.
        context: String,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Debug)]
pub struct Pipe {
    pub decl: Vec<String>,
    /// `$x = …` assigns to an existing variable instead of declaring one.
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub struct Command {
    pub pos: usize,
    /// End of the command's source text, for error context.
    pub end: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub struct Arg {
    pub pos: usize,
    pub end: usize,
    /// Where Go reports errors about this node: a chain `.a.b` is reported at `.b`.
    pub loc: usize,
    pub kind: ArgKind,
}

#[derive(Debug)]
pub enum ArgKind {
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (the first element is the variable name with `$`).
    Variable(Vec<String>),
    /// `(pipe).a.b` or `fn.a` chained fields on another operand.
    Chain(Box<Arg>, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Number),
    Str(String),
    /// A function name.
    Ident(String),
    Pipe(Box<Pipe>),
}

/// A number constant with every interpretation Go's parser accepts.
#[derive(Debug, Clone)]
pub struct Number {
    pub int: Option<i64>,
    pub float: Option<f64>,
    /// Go passes a constant written with `.`, `e` or `p` as float64 to untyped parameters.
    pub float_syntax: bool,
}

/// A parsed template body with the source it came from, for error positions.
#[derive(Debug)]
pub struct Tree {
    pub name: String,
    /// The name of the template being parsed when this tree was found (Go's ParseName).
    pub parse_name: String,
    pub source: Arc<str>,
    pub root: List,
}

impl Tree {
    /// `(line, column)` of a byte offset, as Go's ErrorContext counts them.
    pub fn position(&self, pos: usize) -> (usize, usize) {
        let text = &self.source[..pos.min(self.source.len())];
        match text.rfind('\n') {
            Some(nl) => (1 + text.matches('\n').count(), pos - nl - 1),
            None => (1, pos),
        }
    }

    /// Go's IsEmptyTree: only whitespace text (and nothing executable).
    pub fn is_empty(&self) -> bool {
        self.root.iter().all(|n| match n {
            Node::Text(t) => t.trim().is_empty(),
            _ => false,
        })
    }
}

#[derive(Debug)]
pub struct ParseError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

struct Parser<'f> {
    tokens: Vec<Token>,
    i: usize,
    name: String,
    source: Arc<str>,
    vars: Vec<String>,
    range_depth: usize,
    defines: Vec<Tree>,
    has_function: &'f dyn Fn(&str) -> bool,
    /// Open control structures and parentheses; bounded so hostile input cannot exhaust the
    /// (small, wasm) stack of the recursive parser and executor.
    nesting: usize,
}

/// Deeper nesting of `if`/`range`/`with`/`block` and parentheses is refused.
pub const MAX_NESTING: usize = 100;

enum Item {
    Node(Node),
    Else,
    End,
}

/// Parse `source` as template `name`; returns the main tree and every `define`/`block` in it.
pub fn parse(
    name: &str,
    source: &str,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<(Tree, Vec<Tree>), ParseError> {
    let tokens = lex(source);
    let source: Arc<str> = Arc::from(source);
    let mut p = Parser {
        tokens,
        i: 0,
        name: name.to_string(),
        source: source.clone(),
        vars: vec!["$".into()],
        range_depth: 0,
        defines: Vec::new(),
        has_function,
        nesting: 0,
    };
    let root = p.top()?;
    Ok((
        Tree {
            name: name.to_string(),
            parse_name: name.to_string(),
            source,
            root,
        },
        p.defines,
    ))
}

/// Go's item.String(): keywords in angle brackets, anything else as its quoted source text.
fn describe(t: &Token, source: &str) -> String {
    match &t.tok {
        Tok::Eof => return "EOF".into(),
        Tok::Error(msg) => return msg.clone(),
        Tok::Dot => return "<.>".into(),
        Tok::Ident(k) if KEYWORDS.contains(&k.as_str()) || k == "nil" => return format!("<{k}>"),
        _ => {}
    }
    let text = source.get(t.pos..t.end).unwrap_or("");
    if text.chars().count() > 10 {
        let head: String = text.chars().take(10).collect();
        return format!("{}...", crate::printf::go_quote(&head, false));
    }
    crate::printf::go_quote(text, false)
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

impl Parser<'_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        let tok = &self.tokens[self.i.saturating_sub(1).min(self.tokens.len() - 1)];
        Err(ParseError {
            name: self.name.clone(),
            line: tok.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn peek_non_space(&mut self) -> &Token {
        self.skip_space();
        self.peek()
    }

    fn unexpected<T>(&self, tok: &Token, context: &str) -> Result<T, ParseError> {
        if let Tok::Error(msg) = &tok.tok {
            return Err(ParseError {
                name: self.name.clone(),
                line: tok.line,
                message: msg.clone(),
            });
        }
        self.err(format!(
            "unexpected {} in {}",
            describe(tok, &self.source),
            context
        ))
    }

    fn top(&mut self) -> Result<List, ParseError> {
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return Ok(list);
            }
            if self.peek().tok == Tok::LeftDelim {
                let save = self.i;
                self.i += 1;
                if matches!(&self.peek_non_space().tok, Tok::Ident(k) if k == "define") {
                    self.i += 1;
                    self.definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::Else => return self.err("unexpected {{else}}"),
                Item::End => return self.err("unexpected {{end}}"),
            }
        }
    }

    fn definition(&mut self) -> Result<(), ParseError> {
        let tok = self.next_non_space();
        let Tok::Str(name) = tok.tok else {
            return self.unexpected(&tok, "define clause");
        };
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Item::End) {
            return self.err("unexpected {{else}} in define clause");
        }
        self.add_define(name, list);
        Ok(())
    }

    fn add_define(&mut self, name: String, root: List) {
        self.defines.push(Tree {
            name,
            parse_name: self.name.clone(),
            source: self.source.clone(),
            root,
        });
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), ParseError> {
        let tok = self.next_non_space();
        if tok.tok != Tok::RightDelim {
            return self.unexpected(&tok, context);
        }
        Ok(())
    }

    /// Items until `{{else}}` or `{{end}}`, which is returned.
    fn item_list(&mut self) -> Result<(List, Item), ParseError> {
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return self.err("unexpected EOF");
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Item, ParseError> {
        let tok = self.next();
        match tok.tok {
            Tok::Text(t) => Ok(Item::Node(Node::Text(t))),
            Tok::LeftDelim => self.action(),
            _ => self.unexpected(&tok, "input"),
        }
    }

    fn action(&mut self) -> Result<Item, ParseError> {
        let tok = self.peek_non_space().clone();
        if let Tok::Ident(k) = &tok.tok {
            match k.as_str() {
                "block" => {
                    self.i += 1;
                    return self.block().map(Item::Node);
                }
                "break" | "continue" => {
                    self.i += 1;
                    if self.range_depth == 0 {
                        return self.err(format!("{{{{{k}}}}} outside {{{{range}}}}"));
                    }
                    self.expect_right_delim(&format!("{{{{{k}}}}}"))?;
                    return Ok(Item::Node(if k == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    }));
                }
                "else" => {
                    self.i += 1;
                    // `{{else if …}}` / `{{else with …}}`: the keyword stays for the caller.
                    let next = self.peek_non_space().clone();
                    if matches!(&next.tok, Tok::Ident(k) if k == "if" || k == "with") {
                        return Ok(Item::Else);
                    }
                    self.expect_right_delim("else")?;
                    return Ok(Item::Else);
                }
                "end" => {
                    self.i += 1;
                    self.expect_right_delim("end")?;
                    return Ok(Item::End);
                }
                "if" | "range" | "with" => {
                    self.i += 1;
                    let k = k.clone();
                    return self.control(&k).map(Item::Node);
                }
                "template" => {
                    self.i += 1;
                    return self.template_call().map(Item::Node);
                }
                "define" => return self.err("unexpected <define> in command"),
                _ => {}
            }
        }
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn nest(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.err(format!("template nesting deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn control(&mut self, kind: &str) -> Result<Node, ParseError> {
        self.nest()?;
        let node = self.control_body(kind);
        self.nesting -= 1;
        node
    }

    fn control_body(&mut self, kind: &str) -> Result<Node, ParseError> {
        let mark = self.vars.len();
        let pipe = self.pipeline(kind, Tok::RightDelim)?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if kind == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Item::End => None,
            Item::Else => {
                let next = self.peek_non_space().tok.clone();
                let chained = match &next {
                    Tok::Ident(k) if k == kind && (k == "if" || k == "with") => true,
                    Tok::Ident(k) if k == "if" || k == "with" => {
                        // Go reads `{{else if}}` as `{{else}}` and then meets `if` as input.
                        return self.err(format!("unexpected <{k}> in input"));
                    }
                    _ => false,
                };
                if chained {
                    // `{{else if x}}` is `{{else}}{{if x}}…{{end}}{{end}}` sharing one {{end}}.
                    self.i += 1;
                    self.vars.truncate(mark);
                    Some(vec![self.control(kind)?])
                } else {
                    let (else_list, end) = self.item_list()?;
                    if !matches!(end, Item::End) {
                        return self.err("expected end; found {{else}}");
                    }
                    Some(else_list)
                }
            }
            Item::Node(_) => unreachable!("item_list ends only at else or end"),
        };
        self.vars.truncate(mark);
        let branch = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    fn template_call(&mut self) -> Result<Node, ParseError> {
        let tok = self.next_non_space();
        let Tok::Str(name) = tok.tok else {
            return self.unexpected(&tok, "template clause");
        };
        let pipe = if self.peek_non_space().tok == Tok::RightDelim {
            self.i += 1;
            None
        } else {
            Some(self.pipeline("template clause", Tok::RightDelim)?)
        };
        let context = self.template_context(&name, tok.end, pipe.is_some());
        Ok(Node::Template {
            name,
            pipe,
            pos: tok.pos,
            context,
        })
    }

    /// The text of a template call from its name token to the closing delimiter just read.
    fn template_context(&self, name: &str, name_end: usize, has_pipe: bool) -> String {
        let close = self.tokens[self.i.saturating_sub(1)].pos;
        let pipe = self.source.get(name_end..close).unwrap_or("").trim();
        if has_pipe && !pipe.is_empty() {
            format!("{{{{template {name:?} {pipe}}}}}")
        } else {
            format!("{{{{template {name:?}}}}}")
        }
    }

    fn block(&mut self) -> Result<Node, ParseError> {
        let tok = self.next_non_space();
        let Tok::Str(name) = tok.tok else {
            return self.unexpected(&tok, "block clause");
        };
        let pipe = self.pipeline("block clause", Tok::RightDelim)?;
        let context = self.template_context(&name, tok.end, true);
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Item::End) {
            return self.err("unexpected {{else}} in block clause");
        }
        self.add_define(name.clone(), list);
        Ok(Node::Template {
            name,
            pipe: Some(pipe),
            pos: tok.pos,
            context,
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe, ParseError> {
        let mut pipe = Pipe {
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and in range `$i, $v :=`.
        loop {
            let save = self.i;
            let Tok::Variable(v) = self.peek_non_space().tok.clone() else {
                break;
            };
            self.i += 1;
            let after = self.peek_non_space().tok.clone();
            match after {
                Tok::Declare | Tok::Assign => {
                    self.i += 1;
                    // Go checks assignments to undeclared variables only when executing.
                    pipe.is_assign = after == Tok::Assign;
                    pipe.decl.push(v.clone());
                    if !pipe.is_assign {
                        self.vars.push(v);
                    }
                    break;
                }
                Tok::Comma if context != "range" => {
                    return self.err(format!("too many declarations in {context}"));
                }
                Tok::Comma if pipe.decl.is_empty() => {
                    self.i += 1;
                    pipe.decl.push(v.clone());
                    self.vars.push(v);
                    continue;
                }
                _ => {
                    if !pipe.decl.is_empty() {
                        return self.err("range can only initialize variables");
                    }
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let tok = self.next_non_space();
            if tok.tok == end {
                if pipe.cmds.is_empty() {
                    return self.err(format!("missing value for {context}"));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args[0].kind,
                        ArgKind::Bool(_)
                            | ArgKind::Dot
                            | ArgKind::Nil
                            | ArgKind::Number(_)
                            | ArgKind::Str(_)
                    ) {
                        return self.err(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        ));
                    }
                }
                return Ok(pipe);
            }
            match tok.tok {
                Tok::Ident(_)
                | Tok::Field(_)
                | Tok::Dot
                | Tok::Variable(_)
                | Tok::Str(_)
                | Tok::Char(_)
                | Tok::Number(_)
                | Tok::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&tok, context),
            }
        }
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if let Some(arg) = self.operand()? {
                args.push(arg);
            }
            let tok = self.next();
            match tok.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.i -= 1,
                Tok::Pipe => {}
                _ => return self.unexpected(&tok, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.err("empty command");
        }
        let end = args.last().map_or(pos, |a: &Arg| a.end);
        Ok(Command { pos, end, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(mut arg) = self.term()? else {
            return Ok(None);
        };
        if let Tok::Field(_) = self.peek().tok {
            let loc = self.peek().pos;
            let mut fields = Vec::new();
            let mut end = arg.end;
            while let Tok::Field(f) = &self.peek().tok {
                fields.push(f.clone());
                end = self.peek().pos + 1 + f.len();
                self.i += 1;
            }
            let pos = arg.pos;
            let kind = match arg.kind {
                ArgKind::Field(mut names) => {
                    names.extend(fields);
                    ArgKind::Field(names)
                }
                ArgKind::Variable(mut names) => {
                    names.extend(fields);
                    ArgKind::Variable(names)
                }
                ArgKind::Bool(_)
                | ArgKind::Str(_)
                | ArgKind::Number(_)
                | ArgKind::Nil
                | ArgKind::Dot => {
                    return self.err(format!(
                        "unexpected . after term {:?}",
                        &self.source[arg.pos..arg.end]
                    ));
                }
                other => ArgKind::Chain(
                    Box::new(Arg {
                        pos,
                        end: arg.end,
                        loc: arg.loc,
                        kind: other,
                    }),
                    fields,
                ),
            };
            arg = Arg {
                pos,
                end,
                loc,
                kind,
            };
        }
        Ok(Some(arg))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let tok = self.next_non_space();
        let pos = tok.pos;
        let simple = |kind, len: usize| {
            Ok(Some(Arg {
                pos,
                end: pos + len,
                loc: pos,
                kind,
            }))
        };
        match tok.tok {
            Tok::Ident(name) => {
                let len = name.len();
                match name.as_str() {
                    "true" => return simple(ArgKind::Bool(true), 4),
                    "false" => return simple(ArgKind::Bool(false), 5),
                    "nil" => return simple(ArgKind::Nil, 3),
                    _ => {}
                }
                if KEYWORDS.contains(&name.as_str()) {
                    return self.err(format!("unexpected <{name}> in command"));
                }
                if !(self.has_function)(&name) {
                    return self.err(format!("function {name:?} not defined"));
                }
                simple(ArgKind::Ident(name), len)
            }
            Tok::Dot => simple(ArgKind::Dot, 1),
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return self.err(format!("undefined variable {v:?}"));
                }
                let len = v.len();
                simple(ArgKind::Variable(vec![v]), len)
            }
            Tok::Field(f) => {
                let len = f.len() + 1;
                simple(ArgKind::Field(vec![f]), len)
            }
            Tok::Number(text) => {
                let n = parse_number(&text)
                    .ok_or(())
                    .or_else(|_| self.err(format!("illegal number syntax: {text:?}")))?;
                simple(ArgKind::Number(n), text.len())
            }
            Tok::Char(c) => {
                let end = self.tokens.get(self.i).map_or(pos + 3, |t| t.pos);
                Ok(Some(Arg {
                    pos,
                    end,
                    loc: pos,
                    kind: ArgKind::Number(Number {
                        int: Some(c as i64),
                        float: Some(c as u32 as f64),
                        float_syntax: false,
                    }),
                }))
            }
            Tok::Str(s) => {
                let end = self.tokens.get(self.i).map_or(pos, |t| t.pos);
                Ok(Some(Arg {
                    pos,
                    end,
                    loc: pos,
                    kind: ArgKind::Str(s),
                }))
            }
            Tok::LeftParen => {
                self.nest()?;
                let pipe = self.pipeline("parenthesized pipeline", Tok::RightParen)?;
                self.nesting -= 1;
                let end = self.tokens[self.i - 1].pos + 1;
                Ok(Some(Arg {
                    pos,
                    end,
                    loc: pos,
                    kind: ArgKind::Pipe(Box::new(pipe)),
                }))
            }
            _ => {
                self.i -= 1;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> (Tree, Vec<Tree>) {
        parse("t", src, &|f| f == "printf").unwrap()
    }

    fn parse_err(src: &str) -> String {
        parse("t", src, &|f| f == "printf").unwrap_err().message
    }

    #[test]
    fn defines_are_collected_apart_from_the_body() {
        let (tree, defines) = parse_ok("a{{define \"x\"}}b{{end}}c");
        assert_eq!(tree.root.len(), 2);
        assert_eq!(defines.len(), 1);
        assert_eq!(defines[0].name, "x");
    }

    #[test]
    fn unknown_functions_and_variables_are_parse_errors() {
        assert_eq!(parse_err("{{foo 1}}"), "function \"foo\" not defined");
        assert_eq!(parse_err("{{$x}}"), "undefined variable \"$x\"");
        assert_eq!(
            parse_err("{{if 1}}{{$x := 1}}{{end}}{{$x}}"),
            "undefined variable \"$x\""
        );
        assert!(parse_err("{{break}}").contains("outside {{range}}"));
        assert!(parse_err("{{if 1}}").contains("unexpected EOF"));
    }

    #[test]
    fn else_if_chains_share_one_end() {
        let (tree, _) = parse_ok("{{if 1}}a{{else if 2}}b{{else}}c{{end}}");
        let Node::If(b) = &tree.root[0] else { panic!() };
        let else_list = b.else_list.as_ref().unwrap();
        assert!(matches!(else_list[0], Node::If(_)));
    }

    #[test]
    fn deep_nesting_is_refused_before_it_exhausts_the_stack() {
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_err(&deep).contains("nesting deeper"));
        let ifs = format!("{}{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
        assert!(parse_err(&ifs).contains("nesting deeper"));
        let ok = format!("{{{{ {}1{} }}}}", "(".repeat(50), ")".repeat(50));
        parse_ok(&ok);
    }
}
