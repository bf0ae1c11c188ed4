//! Hostile test plugin: a drift detector that panics (a trap once compiled with `panic = "abort"`) on
//! every call. The agent must fall back to the built-in verdict and name this plugin in its report.

wit_bindgen::generate!({ path: "../../../wit", world: "tether:plugin/drift-detector@0.1.0" });

use exports::tether::plugin::detect::{Guest, Observed, Report};
use tether::plugin::types::Error;

struct TrapDetector;

impl Guest for TrapDetector {
    fn detect(
        _settings: Vec<(String, String)>,
        _observed: Vec<Observed>,
    ) -> Result<Vec<Report>, Error> {
        panic!("the trap detector always panics");
    }
}

export!(TrapDetector);
