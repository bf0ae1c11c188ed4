//! Functions of helm's template language the shared engine lacks or can't give helm's meaning
//! inside the sandbox, added to the chart's template set as host functions.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use tether_gotemplate::{HostFunction, Templates, Value};

/// The name helm v4 gives the text `tpl` parses: its root template's, never a chart file's.
const TPL_TEMPLATE: &str = "gotpl";

/// bcrypt's cost in Go's `bcrypt.DefaultCost`, which sprig's `htpasswd` uses.
const BCRYPT_COST: u32 = 10;

/// helm's `tpl`: parse the text into a copy of the chart's template set (so it can `include` the
/// chart's defines) under the root template's name and run it with the given dot. The engine's own
/// `tpl` names the text after `.Template.Name`, so an empty text (common: `tpl .Values.x .` with `x: ""`)
/// runs the calling file again and recurses until the depth limit; this one does what helm v4 does.
/// It holds the set weakly: the set holds this function.
pub fn tpl(parsed: Weak<OnceLock<Templates>>) -> HostFunction {
    Arc::new(move |args: &[Value]| {
        let [source, dot] = args else {
            return Err(format!(
                "wrong number of args for tpl: want 2 got {}",
                args.len()
            ));
        };
        let Value::String(source) = source else {
            return Err(format!(
                "wrong type for value; expected string; got {}",
                source.type_name()
            ));
        };
        let parsed = parsed.upgrade();
        let Some(base) = parsed.as_ref().and_then(|p| p.get()) else {
            return Err("tpl can't be called while the chart's templates are parsed".to_owned());
        };
        let mut set = base.clone();
        set.parse(TPL_TEMPLATE, source)
            .map_err(|e| format!("cannot parse template {source:?}: {e}"))?;
        let output = set
            .execute(TPL_TEMPLATE, dot)
            .map_err(|e| format!("error during tpl function execution for {source:?}: {e}"))?;
        Ok(Value::str(output.replace("<no value>", "")))
    })
}

/// Random-by-nature host functions called since the last `take` (for the render's warnings).
#[derive(Debug, Clone, Default)]
pub struct RandomCalls(Arc<Mutex<Vec<&'static str>>>);

impl RandomCalls {
    fn record(&self, function: &'static str) {
        if let Ok(mut calls) = self.0.lock()
            && !calls.contains(&function)
        {
            calls.push(function);
        }
    }

    /// The functions called since the last take.
    pub fn take(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

/// sprig's `htpasswd user password`: `user:` and a bcrypt hash (`$2a$`, cost 10) with a random salt,
/// so the output changes at every render, which `calls` records.
pub fn htpasswd(calls: RandomCalls) -> HostFunction {
    Arc::new(move |args: &[Value]| {
        let [Value::String(user), Value::String(password)] = args else {
            return Err("htpasswd takes a user name and a password (two strings)".to_owned());
        };
        calls.record("htpasswd");
        if user.contains(':') {
            return Ok(Value::str(format!("invalid username: {user}")));
        }
        let hash = bcrypt::hash_with_result(password.as_bytes(), BCRYPT_COST)
            .map_err(|e| format!("htpasswd: {e}"))?
            .format_for_version(bcrypt::Version::TwoA);
        Ok(Value::str(format!("{user}:{hash}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_is_a_verifiable_bcrypt_hash_and_recorded() {
        let calls = RandomCalls::default();
        let f = htpasswd(calls.clone());
        let out = f(&[Value::str("ada"), Value::str("secret")]).unwrap();
        let (user, hash) = out.as_str().unwrap().split_once(':').unwrap();
        assert_eq!(user, "ada");
        assert!(hash.starts_with("$2a$10$"), "{hash}");
        assert!(bcrypt::verify("secret", hash).unwrap());
        assert_eq!(calls.take(), ["htpasswd"]);
        assert!(calls.take().is_empty());
    }

    #[test]
    fn tpl_renders_with_the_chart_defines_and_empty_text_is_empty() {
        let parsed: Arc<OnceLock<Templates>> = Arc::new(OnceLock::new());
        let mut set = Templates::new();
        set.add_function("tpl", tpl(Arc::downgrade(&parsed)));
        set.parse(
            "c/templates/_h.tpl",
            r#"{{ define "greet" }}hi {{ . }}{{ end }}"#,
        )
        .unwrap();
        set.parse(
            "c/templates/a.yaml",
            r#"[{{ tpl "" . }}][{{ tpl "{{ include \"greet\" .x }}" . }}]"#,
        )
        .unwrap();
        let set = parsed.get_or_init(|| set);
        let mut data = std::collections::BTreeMap::new();
        data.insert("x".to_owned(), Value::str("there"));
        let out = set
            .execute("c/templates/a.yaml", &Value::map(data))
            .unwrap();
        assert_eq!(out, "[][hi there]");
    }
}
