//! Field chains (`.a.b`, `$x.a`, `(pipe).a`): map lookups under the `missingkey` option, the
//! missing-versus-nil distinction inside one chain, and method calls on host objects.

use super::{Exec, Result, Slot};
use crate::MissingKey;
use crate::parse::Arg;
use crate::value::Value;

/// A field chain's receiver, and whether Go holds it boxed in an interface{} (which its error
/// messages name as `interface {}`).
pub(super) struct Receiver {
    pub value: Slot,
    pub boxed: bool,
}

impl Exec<'_, '_> {
    pub(super) fn eval_field_chain(
        &mut self,
        dot: &Slot,
        receiver: Receiver,
        node: &Arg,
        names: &[String],
        args: &[Arg],
        final_: Option<Slot>,
    ) -> Result<Slot> {
        let n = names.len();
        let mut receiver = receiver;
        for name in &names[..n - 1] {
            let value = self.eval_field(dot, name, node, &[], None, receiver)?;
            // A value that came out of a map is an interface{} to Go.
            receiver = Receiver { value, boxed: true };
        }
        self.eval_field(dot, &names[n - 1], node, args, final_, receiver)
    }

    pub(super) fn eval_field(
        &mut self,
        dot: &Slot,
        name: &str,
        node: &Arg,
        args: &[Arg],
        final_: Option<Slot>,
        receiver: Receiver,
    ) -> Result<Slot> {
        let Receiver {
            value: receiver,
            boxed,
        } = receiver;
        let has_args = !args.is_empty() || final_.is_some();
        let Some(receiver) = receiver else {
            if self.set.options.missing_key == MissingKey::Error {
                return Err(self.error(format!("nil data; no entry for key {name:?}")));
            }
            return Ok(None);
        };
        match &receiver {
            Value::Nil => Err(self.error(format!("nil pointer evaluating interface {{}}.{name}"))),
            Value::Map(m) => {
                // A method of the map's named type shadows a key of the same name, as in Go.
                if let Some(methods) = m.methods() {
                    let argv = self.eval_method_args(dot, node, args, final_.clone())?;
                    if let Some(result) = methods.call(m, name, &argv) {
                        return result
                            .map(Some)
                            .map_err(|e| self.error(format!("error calling {name}: {e}")));
                    }
                }
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                match m.get(name) {
                    Some(v) => Ok(Some(v)),
                    None => match self.set.options.missing_key {
                        MissingKey::Default => Ok(None),
                        MissingKey::Zero => Ok(Some(Value::Nil)),
                        MissingKey::Error => {
                            Err(self.error(format!("map has no entry for key {name:?}")))
                        }
                    },
                }
            }
            Value::Object(o) => {
                let argv = self.eval_method_args(dot, node, args, final_)?;
                if let Some(result) = o.call(name, &argv) {
                    return result
                        .map(Some)
                        .map_err(|e| self.error(format!("error calling {name}: {e}")));
                }
                if has_args {
                    return Err(self.error(format!(
                        "{name} has arguments but cannot be invoked as function"
                    )));
                }
                match o.field(name) {
                    Some(v) => Ok(Some(v)),
                    None => Err(self.error(format!(
                        "can't evaluate field {name} in type {}",
                        o.type_name()
                    ))),
                }
            }
            other => Err(self.error(format!(
                "can't evaluate field {name} in type {}",
                if boxed {
                    "interface {}".to_string()
                } else {
                    other.type_name()
                }
            ))),
        }
    }

    /// The arguments of a method call: those written after the name, then a piped value.
    fn eval_method_args(
        &mut self,
        dot: &Slot,
        node: &Arg,
        args: &[Arg],
        final_: Option<Slot>,
    ) -> Result<Vec<Value>> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        for a in args {
            argv.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = final_ {
            argv.push(f.unwrap_or(Value::Nil));
        }
        if !args.is_empty() {
            self.at_arg(node);
        }
        Ok(argv)
    }
}
