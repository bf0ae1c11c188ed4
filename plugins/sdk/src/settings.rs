//! Typed access to a call's settings (all strings on the wire).

use crate::PluginError;
use std::str::FromStr;

/// The settings of one call, in the order the user gave them.
#[derive(Debug, Clone, Default)]
pub struct Settings(Vec<(String, String)>);

impl Settings {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Settings(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The setting parsed as `T`; a value that doesn't parse is `invalid-settings` naming the key.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, PluginError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|raw| {
                raw.parse::<T>().map_err(|e| {
                    PluginError::invalid_setting(format!("setting `{key}`: {e} (got `{raw}`)"))
                })
            })
            .transpose()
    }

    /// Fail on keys this plugin does not know, so a typo is an error rather than a silently ignored setting.
    pub fn expect_only(&self, known: &[&str]) -> Result<(), PluginError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((key, _)) => Err(PluginError::invalid_setting(format!(
                "unknown setting `{key}` (known: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
