//! The built-in drift detector, ownership-aware. A field drifts when Git sets it and the live object has
//! another value (or none); fields Git does not set are the cluster's business and never drift. Lists
//! of the same length are compared item by item, so fields the API server defaults inside an item
//! (a container's `terminationMessagePath`) are not drift. A differing value that Tether's own field
//! manager still owns is the API server's normalisation of what Tether sent (`0.5` CPU stored as
//! `500m`), not drift: whoever changes a field takes its ownership. `status` and the server-populated
//! parts of `metadata` are ignored, as are the JSON-pointer prefixes in the `ignore` setting
//! (comma-separated). Each drift names the field manager owning the live value.
//!
//! Settings: `ignore` (JSON pointers, comma-separated), `manager` (Tether's field manager, `tether`).

wit_bindgen::generate!({ path: "../../wit", world: "tether:plugin/drift-detector@0.1.0" });

use exports::tether::plugin::detect::{Drift, FieldOwner, Guest, Observed, Report, Verdict};
use serde_json::Value;
use tether::plugin::types::{Diagnostic, Error};

/// Tether's field manager, unless the `manager` setting names another.
const DEFAULT_MANAGER: &str = "tether";

/// Written by the API server, not by Git: comparing them would report drift on every object.
const SERVER_FIELDS: &[&str] = &[
    "/status",
    "/metadata/uid",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/creationTimestamp",
    "/metadata/managedFields",
    "/metadata/selfLink",
];

struct Detector;

impl Guest for Detector {
    fn detect(
        settings: Vec<(String, String)>,
        observed: Vec<Observed>,
    ) -> Result<Vec<Report>, Error> {
        let mut ignored: Vec<String> = SERVER_FIELDS.iter().map(|s| (*s).to_owned()).collect();
        let mut manager = DEFAULT_MANAGER.to_owned();
        for (key, value) in &settings {
            match key.as_str() {
                "manager" => manager = value.clone(),
                "ignore" => ignored.extend(
                    value
                        .split(',')
                        .map(|p| p.trim().to_owned())
                        .filter(|p| !p.is_empty()),
                ),
                other => {
                    return Err(Error::InvalidSettings(Diagnostic {
                        message: format!("unknown setting `{other}` (known: ignore, manager)"),
                        location: None,
                    }));
                }
            }
        }
        observed
            .iter()
            .enumerate()
            .map(|(i, o)| report(i, o, &ignored, &manager))
            .collect()
    }
}

export!(Detector);

fn parse(index: usize, which: &str, json: &str) -> Result<Value, Error> {
    serde_json::from_str(json).map_err(|e| {
        Error::InvalidInput(Diagnostic {
            message: format!("observed[{index}].{which} is not JSON: {e}"),
            location: None,
        })
    })
}

fn report(
    index: usize,
    observed: &Observed,
    ignored: &[String],
    manager: &str,
) -> Result<Report, Error> {
    let (desired, live) = match (&observed.desired, &observed.live) {
        (None, None) => {
            return Ok(Report {
                verdict: Verdict::InSync,
                drifts: Vec::new(),
            });
        }
        (None, Some(_)) => {
            return Ok(Report {
                verdict: Verdict::Extraneous,
                drifts: Vec::new(),
            });
        }
        (Some(_), None) => {
            return Ok(Report {
                verdict: Verdict::Missing,
                drifts: Vec::new(),
            });
        }
        (Some(desired), Some(live)) => (
            parse(index, "desired", desired)?,
            parse(index, "live", live)?,
        ),
    };
    let mut drifts = Vec::new();
    let context = Context {
        ignored,
        owners: &observed.owners,
        manager,
    };
    compare("", &desired, Some(&live), &context, &mut drifts);
    let verdict = if drifts.is_empty() {
        Verdict::InSync
    } else {
        Verdict::Drifted
    };
    Ok(Report { verdict, drifts })
}

/// What every comparison of one object needs.
struct Context<'a> {
    ignored: &'a [String],
    owners: &'a [FieldOwner],
    manager: &'a str,
}

fn compare(
    path: &str,
    desired: &Value,
    live: Option<&Value>,
    cx: &Context<'_>,
    drifts: &mut Vec<Drift>,
) {
    if cx
        .ignored
        .iter()
        .any(|prefix| path == prefix || path.starts_with(&format!("{prefix}/")))
    {
        return;
    }
    match (desired, live) {
        (Value::Object(wanted), Some(Value::Object(have))) => {
            for (key, value) in wanted {
                let child = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                compare(&child, value, have.get(key), cx, drifts);
            }
        }
        (Value::Array(wanted), Some(Value::Array(have))) if wanted.len() == have.len() => {
            for (i, (value, item)) in wanted.iter().zip(have).enumerate() {
                compare(&format!("{path}/{i}"), value, Some(item), cx, drifts);
            }
        }
        _ if live == Some(desired) => {}
        // Still Tether's: the server stored what Tether sent in its own spelling.
        (_, Some(_)) if owns_exactly(cx.owners, cx.manager, path) => {}
        _ => drifts.push(Drift {
            path: path.to_owned(),
            desired: Some(desired.to_string()),
            live: live.map(Value::to_string),
            owner: owner_of(path, cx.owners),
        }),
    }
}

/// Whether `manager` owns exactly the field at `path`.
fn owns_exactly(owners: &[FieldOwner], manager: &str, path: &str) -> bool {
    owners
        .iter()
        .filter(|o| o.manager == manager)
        .any(|o| o.fields.iter().any(|f| f == path))
}

/// The manager owning the most specific field at or above `path`.
fn owner_of(path: &str, owners: &[FieldOwner]) -> Option<String> {
    owners
        .iter()
        .flat_map(|o| o.fields.iter().map(move |f| (f, &o.manager)))
        .filter(|(field, _)| path == field.as_str() || path.starts_with(&format!("{field}/")))
        .max_by_key(|(field, _)| field.len())
        .map(|(_, manager)| manager.clone())
}
