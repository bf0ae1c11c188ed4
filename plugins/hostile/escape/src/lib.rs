//! Hostile test plugin: tries the way out named by the `try` setting and reports what happened as an
//! error value, so a test can see the sandbox's answer:
//! - `passwd`: read `/etc/passwd`;
//! - `parent`: read `../` of the source tree;
//! - `write`: create a file in the (read-only) source tree;
//! - `socket`: open a TCP connection to 127.0.0.1:`port`;
//! - `env`: list the environment (must be empty).

use std::io::Write;
use tether_plugin_sdk::{Object, PluginError, RenderOutput, RenderRequest, Renderer};

struct Escape;

impl Renderer for Escape {
    fn render(request: RenderRequest) -> Result<RenderOutput, PluginError> {
        let src = &request.context.source_dir;
        let attempt = request.settings.get("try").unwrap_or("passwd");
        let outcome = match attempt {
            "passwd" => std::fs::read_to_string("/etc/passwd").map(|t| t.len().to_string()),
            "parent" => std::fs::read_dir(format!("{src}/..")).map(|d| d.count().to_string()),
            "write" => std::fs::File::create(format!("{src}/planted.yaml"))
                .and_then(|mut f| f.write_all(b"kind: Planted\n"))
                .map(|()| "written".to_owned()),
            "socket" => {
                let port = request.settings.get("port").unwrap_or("80");
                std::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                    .map(|_| "connected".to_owned())
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                if vars.is_empty() {
                    let empty = serde_json_free_configmap("env-empty");
                    return Ok(RenderOutput::objects(vec![empty]));
                }
                Ok(vars.join(","))
            }
            other => {
                return Err(PluginError::invalid_setting(format!(
                    "unknown `try` value `{other}`"
                )));
            }
        };
        match outcome {
            Ok(what) => Err(PluginError::failed(format!(
                "ESCAPED via {attempt}: {what}"
            ))),
            Err(e) => Err(PluginError::denied(format!("{attempt}: {e}"))),
        }
    }
}

fn serde_json_free_configmap(name: &str) -> Object {
    Object {
        manifest: format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#
        ),
        origin: None,
    }
}

tether_plugin_sdk::renderer!(Escape);
