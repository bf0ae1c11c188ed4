//! The `plugins:` section of the agent's configuration: which WebAssembly plugins the agent loads
//! (beyond its built-ins), where each comes from, the sha256 that pins it, its settings and its limits.
//!
//! ```yaml
//! plugins:
//!   - name: jsonnet
//!     world: renderer
//!     path: jsonnet-0.3.wasm          # in the agent's plugin directory, or
//!     # repo_file: plugins/jsonnet.wasm  (a file in the config repository)
//!     sha256: 3f7c…                   # 64 hex digits; a mismatch refuses the plugin
//!     settings: {ext_str.env: prod}
//!     limits: {memory: 256Mi, timeout: 30s, output: 16Mi, concurrency: 2}
//!   - name: prometheus
//!     world: proxy
//!     path: prometheus.wasm
//!     sha256: …
//!     allowed_urls: ["http://prometheus.monitoring.svc:9090/api/v1/"]
//! ```
//!
//! Everything is checked while deserializing, so a bad value is reported with its file and line; the
//! runtime receives only valid values and never re-validates.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// Memory a plugin instance may grow to unless its `limits.memory` says otherwise. Enough for a
/// CPython-based plugin rendering a large tree; small enough that a handful of concurrent calls can't
/// exhaust the agent's pod.
pub const DEFAULT_MEMORY: ByteSize = ByteSize(128 * MIB);
/// Wall-clock budget of one call (measured in epoch ticks of guest execution).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of one call's result: GitLab's agent caps a whole sync at 20 MiB, so one renderer's output above
/// 16 MiB could never be applied anyway.
pub const DEFAULT_OUTPUT: ByteSize = ByteSize(16 * MIB);
/// Calls of one plugin running at the same time.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// Ceilings no configuration can exceed: the engine reserves address space per instance for
/// `MAX_MEMORY`, and a call longer than `MAX_TIMEOUT` would stall a sync past any sane reconcile timeout.
pub const MAX_MEMORY: ByteSize = ByteSize(4 * 1024 * MIB);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
pub const MAX_OUTPUT: ByteSize = ByteSize(1024 * MIB);
pub const MAX_CONCURRENCY: u32 = 64;

const MIB: u64 = 1024 * 1024;

/// The `plugins:` list: every entry valid, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<PluginSpec>")]
pub struct Plugins(Vec<PluginSpec>);

impl Plugins {
    pub fn iter(&self) -> std::slice::Iter<'_, PluginSpec> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Plugins {
    type Item = &'a PluginSpec;
    type IntoIter = std::slice::Iter<'a, PluginSpec>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl TryFrom<Vec<PluginSpec>> for Plugins {
    type Error = String;

    fn try_from(specs: Vec<PluginSpec>) -> Result<Self, String> {
        let mut seen = BTreeSet::new();
        for spec in &specs {
            if !seen.insert(spec.name.as_str()) {
                return Err(format!(
                    "plugin name `{}` is used twice; names must be unique",
                    spec.name
                ));
            }
        }
        Ok(Plugins(specs))
    }
}

/// One configured plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PluginFields")]
pub struct PluginSpec {
    pub name: PluginName,
    pub world: World,
    pub source: PluginSource,
    pub sha256: Sha256Digest,
    pub settings: Settings,
    pub limits: PluginLimits,
    /// URL prefixes a proxy may reach through the host; empty for other worlds.
    pub allowed_urls: Vec<AllowedUrl>,
}

/// Where the component's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Relative to the agent's plugin directory (`--plugin-dir`).
    PluginDir(RelativePath),
    /// A file in the config repository, relative to its root.
    RepoFile(RelativePath),
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::PluginDir(path) => write!(f, "plugin directory file `{path}`"),
            PluginSource::RepoFile(path) => write!(f, "config repository file `{path}`"),
        }
    }
}

/// The entry as written; turned into a [`PluginSpec`] once the fields that depend on each other agree.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFields {
    name: PluginName,
    world: World,
    path: Option<RelativePath>,
    repo_file: Option<RelativePath>,
    sha256: Sha256Digest,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    limits: LimitsFields,
    #[serde(default)]
    allowed_urls: Vec<AllowedUrl>,
}

impl TryFrom<PluginFields> for PluginSpec {
    type Error = String;

    fn try_from(f: PluginFields) -> Result<Self, String> {
        let name = &f.name;
        let source = match (f.path, f.repo_file) {
            (Some(path), None) => PluginSource::PluginDir(path),
            (None, Some(file)) => PluginSource::RepoFile(file),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "plugin `{name}`: set either `path` or `repo_file`, not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "plugin `{name}`: missing `path` (in the agent's plugin directory) or `repo_file` (in the config repository)"
                ));
            }
        };
        if !f.allowed_urls.is_empty() && f.world != World::Proxy {
            return Err(format!(
                "plugin `{name}`: `allowed_urls` is only for the proxy world (this plugin is a {})",
                f.world
            ));
        }
        Ok(PluginSpec {
            name: f.name,
            world: f.world,
            source,
            sha256: f.sha256,
            settings: f.settings,
            limits: f.limits.resolve(),
            allowed_urls: f.allowed_urls,
        })
    }
}

/// The world a plugin implements (a world of `tether:plugin@0.1.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Renderer,
    DriftDetector,
    Proxy,
}

impl World {
    pub const ALL: [World; 3] = [World::Renderer, World::DriftDetector, World::Proxy];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Renderer => "renderer",
            World::DriftDetector => "drift-detector",
            World::Proxy => "proxy",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for World {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        World::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| {
                format!("unknown world `{s}` (expected renderer, drift-detector or proxy)")
            })
    }
}

/// A plugin's name: what paths refer to (`render: {plugin: NAME}`) and what every log line and error
/// names. Lower-case letters, digits and `-`, starting with a letter, at most 63 characters (a DNS
/// label, so it can appear in Kubernetes labels and metric labels unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct PluginName(String);

impl PluginName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PluginName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(PluginName(name))
        } else {
            Err(format!(
                "invalid plugin name `{name}`: use lower-case letters, digits and `-`, starting with a letter, at most 63 characters"
            ))
        }
    }
}

impl std::str::FromStr for PluginName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PluginName::try_from(s.to_owned())
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sha256 of a component file, as 64 hex digits (stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Sha256Digest(String);

impl Sha256Digest {
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = String;

    fn try_from(hex: String) -> Result<Self, String> {
        if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha256Digest(hex.to_ascii_lowercase()))
        } else {
            Err(format!(
                "invalid sha256 `{hex}`: expected 64 hex digits (`sha256sum plugin.wasm` prints it)"
            ))
        }
    }
}

impl std::str::FromStr for Sha256Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Sha256Digest::try_from(s.to_owned())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A relative path that stays inside the directory it is relative to: no leading `/`, no `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct RelativePath(String);

impl RelativePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RelativePath {
    type Error = String;

    fn try_from(path: String) -> Result<Self, String> {
        if path.is_empty() {
            return Err("empty path".to_owned());
        }
        if path.starts_with('/') || path.starts_with('\\') {
            return Err(format!("path `{path}` must be relative"));
        }
        if path.split(['/', '\\']).any(|part| part == "..") {
            return Err(format!("path `{path}` must not contain `..`"));
        }
        Ok(RelativePath(path))
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL prefix a proxy plugin may reach: `http://` or `https://`, a host, an optional port and path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedUrl(String);

impl AllowedUrl {
    /// Whether `url` lies under this prefix. A prefix ending in a path segment (`/api`) does not allow
    /// `/api-admin`: the match stops at a `/`, `?` or the end.
    pub fn allows(&self, url: &str) -> bool {
        let Some(rest) = url.strip_prefix(&self.0) else {
            return false;
        };
        self.0.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?'])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AllowedUrl {
    type Error = String;

    fn try_from(url: String) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| format!("allowed URL `{url}` must start with http:// or https://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "allowed URL `{url}` needs a host (and no user info)"
            ));
        }
        Ok(AllowedUrl(url))
    }
}

/// Settings handed to the plugin as strings, in the order written. Values may be written as YAML strings,
/// numbers or booleans; nested values are refused because the contract passes strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings(Vec<(String, String)>);

impl Settings {
    pub fn new(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let mut seen = BTreeSet::new();
        for (key, _) in &pairs {
            if !seen.insert(key.as_str()) {
                return Err(format!("setting `{key}` is given twice"));
            }
        }
        Ok(Settings(pairs))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// These settings with `other`'s values replacing or added to them (a path's settings over the
    /// plugin's, `--set` over both).
    pub fn overlay(&self, other: &Settings) -> Settings {
        let mut merged = self.0.clone();
        for (key, value) in &other.0 {
            match merged.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.clone(),
                None => merged.push((key.clone(), value.clone())),
            }
        }
        Settings(merged)
    }
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SettingsVisitor;

        impl<'de> Visitor<'de> for SettingsVisitor {
            type Value = Settings;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of setting names to strings, numbers or booleans")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Settings, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<SettingValue>()?;
                    pairs.push((key, value.0));
                }
                Settings::new(pairs).map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_map(SettingsVisitor)
    }
}

/// One setting's value, taken from any YAML scalar.
struct SettingValue(String);

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = SettingValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a string, number or boolean (settings are passed to plugins as strings)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The limits of every call of one plugin, with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory of one instance.
    pub memory: ByteSize,
    /// Guest execution time of one call.
    pub timeout: Duration,
    /// Total size of one call's result (manifests, messages, response body).
    pub output: ByteSize,
    /// Calls of this plugin in flight at once.
    pub concurrency: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            output: DEFAULT_OUTPUT,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFields {
    memory: Option<MemoryLimit>,
    timeout: Option<TimeoutLimit>,
    output: Option<OutputLimit>,
    concurrency: Option<ConcurrencyLimit>,
}

impl LimitsFields {
    fn resolve(self) -> PluginLimits {
        let defaults = PluginLimits::default();
        PluginLimits {
            memory: self.memory.map_or(defaults.memory, |m| m.0),
            timeout: self.timeout.map_or(defaults.timeout, |t| t.0),
            output: self.output.map_or(defaults.output, |o| o.0),
            concurrency: self.concurrency.map_or(defaults.concurrency, |c| c.0),
        }
    }
}

macro_rules! bounded_limit {
    ($name:ident, $inner:ty, $check:expr) => {
        #[derive(Deserialize)]
        #[serde(try_from = "QuantityText")]
        struct $name($inner);

        impl TryFrom<QuantityText> for $name {
            type Error = String;
            fn try_from(text: QuantityText) -> Result<Self, String> {
                let check: fn(&str) -> Result<$inner, String> = $check;
                check(&text.0).map($name)
            }
        }
    };
}

bounded_limit!(MemoryLimit, ByteSize, |text| {
    let size: ByteSize = text.parse()?;
    if size.0 < MIB || size > MAX_MEMORY {
        return Err(format!(
            "limits.memory `{text}` must be between 1Mi and {MAX_MEMORY}"
        ));
    }
    Ok(size)
});
bounded_limit!(OutputLimit, ByteSize, |text| {
    let size: ByteSize = text.parse()?;
    if size.0 == 0 || size > MAX_OUTPUT {
        return Err(format!(
            "limits.output `{text}` must be between 1 and {MAX_OUTPUT}"
        ));
    }
    Ok(size)
});
bounded_limit!(TimeoutLimit, Duration, |text| {
    let timeout = parse_duration(text)?;
    if timeout < Duration::from_millis(1) || timeout > MAX_TIMEOUT {
        return Err(format!(
            "limits.timeout `{text}` must be between 1ms and {}s",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(timeout)
});
bounded_limit!(ConcurrencyLimit, u32, |text| {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("limits.concurrency `{text}` must be a whole number"))?;
    if n == 0 || n > MAX_CONCURRENCY {
        return Err(format!(
            "limits.concurrency `{text}` must be between 1 and {MAX_CONCURRENCY}"
        ));
    }
    Ok(n)
});

/// A limit as written: YAML lets `memory: 1024` be a number and `memory: 1Gi` a string; both arrive here
/// as text.
struct QuantityText(String);

impl<'de> Deserialize<'de> for QuantityText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SettingValue::deserialize(deserializer).map(|v| QuantityText(v.0))
    }
}

/// A number of bytes, written as Kubernetes quantities are: `1048576`, `512Ki`, `128Mi`, `1Gi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Written as a limit is: `1048576` or `16Mi`.
impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = QuantityText::deserialize(deserializer)?;
        text.0.parse().map_err(de::Error::custom)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &text[digits.len()..];
        let multiplier: u64 = match unit {
            "" => 1,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            _ => {
                return Err(format!(
                    "size `{text}`: unknown unit `{unit}` (use Ki, Mi or Gi)"
                ));
            }
        };
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("size `{text}` is not a whole number of bytes"))?;
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n} bytes")
    }
}

/// `500ms`, `10s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("duration `{text}` must start with a whole number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(format!(
            "duration `{text}`: unknown unit `{unit}` (use ms, s or m)"
        )),
    }
}

/// A configuration error with the place it was found.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Parse a YAML document whose top level is a `plugins:` key (the section on its own, as tests and the
/// CLI's `--config` use it). The agent parses the section as part of its whole config file instead.
pub fn parse_plugins_section(text: &str, file: &str) -> Result<Plugins, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[serde(default)]
        plugins: Plugins,
    }
    crate::yaml::check_limits(text, file, usize::MAX).map_err(|refused| ConfigError {
        file: file.to_owned(),
        line: refused.line(),
        message: format!(
            "YAML nested more than {} levels deep",
            crate::yaml::MAX_DEPTH
        ),
    })?;
    serde_yaml::from_str::<Section>(text)
        .map(|s| s.plugins)
        .map_err(|e| ConfigError {
            file: file.to_owned(),
            line: e.location().map(|l| l.line()),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
}

#[cfg(test)]
mod tests;
