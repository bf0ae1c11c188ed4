//! Function calls as Go's evalCall makes them: `and`/`or` short-circuit, arity and argument
//! types checked in Go's order against the function's signature, and errors placed where Go
//! places them (the argument for a conversion, the command for a failed call).

use super::{Exec, Receiver, Result, Slot};
use crate::funcs::{self, CallContext};
use crate::parse::{Arg, ArgKind, Command};
use crate::value::Value;

impl Exec<'_, '_> {
    /// Evaluate an argument to a function: a missing value becomes nil.
    pub(super) fn eval_arg(&mut self, dot: &Slot, arg: &Arg) -> Result<Value> {
        Ok(self.eval_arg_slot(dot, arg)?.unwrap_or(Value::Nil))
    }

    /// Evaluate an argument keeping Go's distinction between the invalid value (`None`: a
    /// missing key under missingkey=default, a nil pipeline result) and a present nil.
    pub(super) fn eval_arg_slot(&mut self, dot: &Slot, arg: &Arg) -> Result<Slot> {
        self.at_arg(arg);
        let v = match &arg.kind {
            ArgKind::Dot => dot.clone(),
            // An explicit nil converts to any nilable parameter type (a nil map included).
            ArgKind::Nil => None,
            ArgKind::Bool(b) => Some(Value::Bool(*b)),
            ArgKind::Str(s) => Some(Value::str(s.as_str())),
            ArgKind::Number(n) => Some(match (n.int, n.float) {
                (Some(i), _) if !n.float_syntax => Value::Int(i),
                (_, Some(f)) => Value::Float(f),
                (Some(i), None) => Value::Int(i),
                (None, None) => Value::Nil,
            }),
            ArgKind::Field(names) => self.eval_field_chain(
                dot,
                Receiver {
                    value: dot.clone(),
                    boxed: self.dot_boxed,
                },
                arg,
                names,
                &[],
                None,
            )?,
            ArgKind::Variable(names) => {
                let (v, boxed) = self.var(&names[0])?;
                if names.len() == 1 {
                    v
                } else {
                    self.eval_field_chain(
                        dot,
                        Receiver { value: v, boxed },
                        arg,
                        &names[1..],
                        &[],
                        None,
                    )?
                }
            }
            ArgKind::Chain(inner, names) => {
                let receiver = match self.eval_arg(dot, inner)? {
                    Value::Nil => None,
                    v => Some(v),
                };
                self.eval_field_chain(
                    dot,
                    Receiver {
                        value: receiver,
                        boxed: false,
                    },
                    arg,
                    names,
                    &[],
                    None,
                )?
            }
            ArgKind::Ident(name) => {
                let cmd = Command {
                    pos: arg.pos,
                    end: arg.end,
                    args: Vec::new(),
                };
                self.eval_function(dot, arg, &cmd, name, &[], None)?
            }
            ArgKind::Pipe(p) => self.eval_pipeline(dot, p)?,
        };
        Ok(v)
    }

    /// Go converts a constant argument to the parameter's type while parsing the call, with
    /// its own messages (`expected string; found 3`).
    pub(super) fn check_literal(&mut self, arg: &Arg, kind: char) -> Result<()> {
        let text = self.source(arg).trim_end().to_string();
        let message = match (&arg.kind, kind) {
            (ArgKind::Str(_), 's')
            | (ArgKind::Bool(_), 'b')
            | (ArgKind::Nil, 'm')
            | (ArgKind::Number(_), 'i') => {
                if let ArgKind::Number(n) = &arg.kind
                    && n.int.is_none()
                {
                    format!("expected integer; found {text}")
                } else {
                    return Ok(());
                }
            }
            (ArgKind::Bool(_) | ArgKind::Number(_), 's') => {
                format!("expected string; found {text}")
            }
            (ArgKind::Str(_) | ArgKind::Bool(_), 'i') => {
                format!("expected integer; found {text}")
            }
            (ArgKind::Str(_) | ArgKind::Number(_), 'b') => {
                format!("expected bool; found {text}")
            }
            (ArgKind::Str(_) | ArgKind::Bool(_) | ArgKind::Number(_), 'm') => {
                format!("can't handle {text} for arg of type map[string]interface {{}}")
            }
            (ArgKind::Number(_), 'f') => return Ok(()),
            (ArgKind::Str(_) | ArgKind::Bool(_), 'f') => format!("expected float; found {text}"),
            (ArgKind::Nil, 's' | 'i' | 'b' | 'f') => {
                format!("cannot assign nil to {}", funcs::kind_name(kind))
            }
            _ => return Ok(()),
        };
        self.at_arg(arg);
        Err(self.error(message))
    }

    pub(super) fn eval_function(
        &mut self,
        dot: &Slot,
        ident: &Arg,
        cmd: &Command,
        name: &str,
        args: &[Arg],
        final_: Option<Slot>,
    ) -> Result<Slot> {
        self.at_arg(ident);
        // `and`/`or` evaluate their arguments lazily and return one of them, as Go 1.18+ does.
        if name == "and" || name == "or" {
            if args.is_empty() && final_.is_none() {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(dot, a)?;
                if last.truthy() == (name == "or") {
                    return Ok(Some(last));
                }
            }
            if let Some(f) = final_ {
                last = f.unwrap_or(Value::Nil);
            }
            return Ok(Some(last));
        }
        // Host functions shadow built-ins and check their own arguments.
        let signature = match self.set.user_function(name) {
            Some(_) => None,
            None => funcs::signature(name),
        };
        if let Some(sig) = signature {
            let count = args.len() + usize::from(final_.is_some());
            funcs::check_arity(name, sig, count, args.len()).map_err(|e| self.error(e))?;
        }
        let mut argv = Vec::with_capacity(args.len() + 1);
        // Go checks each argument's type right after evaluating it, so a type error is reported
        // wherever that evaluation left off (inside a parenthesized pipeline, its last node).
        let mut arg_at = Vec::with_capacity(args.len() + 1);
        for (i, a) in args.iter().enumerate() {
            let kind = signature.and_then(|s| funcs::param_kind(s, i));
            if let Some(k) = kind {
                self.check_literal(a, k)?;
            }
            let v = match (&a.kind, kind) {
                // An integral constant such as 3.0 is an int where Go wants one, and any
                // constant a float64 where Go wants that.
                (ArgKind::Number(n), Some('i')) if n.int.is_some() => {
                    self.at_arg(a);
                    Value::Int(n.int.unwrap_or_default())
                }
                (ArgKind::Number(n), Some('f')) if n.float.is_some() => {
                    self.at_arg(a);
                    Value::Float(n.float.unwrap_or_default())
                }
                _ => match self.eval_arg_slot(dot, a)? {
                    // A present nil is a nil interface{}: no string, int, bool or map to Go.
                    Some(Value::Nil) if matches!(kind, Some('m' | 's' | 'i' | 'b' | 'f')) => {
                        return Err(self.error(format!(
                            "wrong type for value; expected {}; got interface {{}}",
                            funcs::kind_name(kind.unwrap_or('a'))
                        )));
                    }
                    v => v.unwrap_or(Value::Nil),
                },
            };
            if let Some(k) = kind {
                funcs::check_param(k, &v).map_err(|e| self.error(e))?;
            }
            argv.push(v);
            arg_at.push(self.at);
        }
        if let Some(f) = final_ {
            let v = f.unwrap_or(Value::Nil);
            if let Some(k) = signature.and_then(|s| funcs::param_kind(s, args.len())) {
                funcs::check_param(k, &v).map_err(|e| self.error(e))?;
            }
            argv.push(v);
            arg_at.push(self.at);
        }
        // Go's `call` names its callee by the argument's text, which only the executor has.
        if name == "call"
            && self.set.user_function(name).is_none()
            && let (Some(first), Some(value)) = (args.first(), argv.first())
        {
            self.at_command(cmd);
            let callee = self
                .tree
                .node_text(first.pos, first.end)
                .unwrap_or_else(|| self.source(first));
            return Err(self.error(match value {
                Value::Nil => "error calling call: call of nil".to_string(),
                v => format!(
                    "error calling call: non-function {callee} of type {}",
                    v.type_name()
                ),
            }));
        }
        let result = if let Some(user) = self.set.user_function(name) {
            user(&argv)
        } else if let Some(f) = funcs::lookup(name) {
            let mut ctx = CallContext {
                set: self.set,
                state: self.state,
                depth: self.depth,
            };
            f(&mut ctx, &argv)
        } else {
            Err(format!("function {name:?} not defined"))
        };
        result
            .map(Some)
            .map_err(|e| match funcs::parse_arg_error(&e) {
                // Go checks argument count and types before calling, and names the argument.
                Some((None, msg)) => {
                    self.at_arg(ident);
                    self.error(format!("wrong number of args for {name}: {msg}"))
                }
                Some((Some(i), msg)) => {
                    match arg_at.get(i) {
                        Some(at) => {
                            self.at = *at;
                            self.context = None;
                        }
                        None => self.at_command(cmd),
                    }
                    self.error(msg)
                }
                None => {
                    self.at_command(cmd);
                    self.error(format!("error calling {name}: {e}"))
                }
            })
    }
}
