//! Functions of helm's template language the shared engine leaves out of the sandbox, added to the
//! chart's template set as host functions.

use std::sync::{Arc, Mutex};
use tether_gotemplate::{HostFunction, Value};

/// bcrypt's cost in Go's `bcrypt.DefaultCost`, which sprig's `htpasswd` uses.
const BCRYPT_COST: u32 = 10;

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
}
