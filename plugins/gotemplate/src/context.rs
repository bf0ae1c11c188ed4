//! Go's `String()` of syntax nodes, which error messages quote as `at <…>`: normalized (one
//! space between arguments, ` | ` between commands), not the source text as written. Only
//! errors need it, so the executor remembers a node by its source span and the text is built
//! here when an error is reported.

use crate::parse::{Arg, ArgKind, Command, List, Node, Pipe, Tree};

fn write_arg(out: &mut String, arg: &Arg, source: &str) {
    match &arg.kind {
        ArgKind::Field(names) => {
            for n in names {
                out.push('.');
                out.push_str(n);
            }
        }
        ArgKind::Variable(names) => out.push_str(&names.join(".")),
        ArgKind::Chain(inner, names) => {
            // A parenthesized receiver keeps its parentheses through write_arg.
            write_arg(out, inner, source);
            for n in names {
                out.push('.');
                out.push_str(n);
            }
        }
        ArgKind::Pipe(p) => {
            out.push('(');
            write_pipe(out, p, source);
            out.push(')');
        }
        ArgKind::Dot => out.push('.'),
        ArgKind::Nil => out.push_str("nil"),
        ArgKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ArgKind::Ident(name) => out.push_str(name),
        // Numbers and strings print as written (Go keeps their source text).
        ArgKind::Number(_) | ArgKind::Str(_) => {
            out.push_str(source.get(arg.pos..arg.end).unwrap_or("").trim_end())
        }
    }
}

fn write_command(out: &mut String, cmd: &Command, source: &str) {
    for (i, arg) in cmd.args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_arg(out, arg, source);
    }
}

fn write_pipe(out: &mut String, pipe: &Pipe, source: &str) {
    if !pipe.decl.is_empty() {
        out.push_str(&pipe.decl.join(", "));
        out.push_str(if pipe.is_assign { " = " } else { " := " });
    }
    for (i, cmd) in pipe.cmds.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        write_command(out, cmd, source);
    }
}

fn find_in_arg(arg: &Arg, span: (usize, usize), source: &str) -> Option<String> {
    if (arg.pos, arg.end) == span {
        let mut out = String::new();
        write_arg(&mut out, arg, source);
        return Some(out);
    }
    match &arg.kind {
        ArgKind::Pipe(p) => find_in_pipe(p, span, source),
        ArgKind::Chain(inner, _) => find_in_arg(inner, span, source),
        _ => None,
    }
}

fn find_in_pipe(pipe: &Pipe, span: (usize, usize), source: &str) -> Option<String> {
    for cmd in &pipe.cmds {
        if (cmd.pos, cmd.end) == span {
            let mut out = String::new();
            write_command(&mut out, cmd, source);
            return Some(out);
        }
        if let Some(t) = cmd.args.iter().find_map(|a| find_in_arg(a, span, source)) {
            return Some(t);
        }
    }
    None
}

fn find_in_list(list: &List, span: (usize, usize), source: &str) -> Option<String> {
    list.iter().find_map(|node| match node {
        Node::Action(p) => find_in_pipe(p, span, source),
        Node::If(b) | Node::Range(b) | Node::With(b) => find_in_pipe(&b.pipe, span, source)
            .or_else(|| find_in_list(&b.list, span, source))
            .or_else(|| {
                b.else_list
                    .as_ref()
                    .and_then(|l| find_in_list(l, span, source))
            }),
        Node::Template { pipe, .. } => pipe.as_ref().and_then(|p| find_in_pipe(p, span, source)),
        _ => None,
    })
}

impl Tree {
    /// Go's text for the command or argument spanning `start..end`, if there is one.
    pub fn node_text(&self, start: usize, end: usize) -> Option<String> {
        find_in_list(&self.root, (start, end), &self.source)
    }
}
