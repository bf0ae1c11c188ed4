//! Where the agent's configured plugins come from: `path:` entries from its plugin directory on
//! disk, `repo_file:` entries from the config repository at the commit the configuration came from,
//! fetched from the server (the agent has no checkout of its own). The catalog then checks each
//! component's `sha256` as for any other source, so a file changed in Git without a new digest in
//! the configuration is refused rather than run.

use std::collections::HashMap;
use std::path::PathBuf;

use tether_config::plugins::{PluginSource, Plugins};
use tether_plugin_host::{LocalPluginFiles, PluginFiles};
use tether_rpc::configuration::v1::PluginFileRequest;

use crate::connection::ServerConnection;

/// The server refuses larger files; the agent stops reading past it too, so a broken server can't
/// make it buffer without bound.
const MAX_PLUGIN_FILE_SIZE: usize = 64 * 1024 * 1024;

/// Plugin bytes for one configuration: local files read on demand, repository files fetched up
/// front (the catalog reads synchronously).
#[derive(Debug)]
pub struct AgentPluginFiles {
    local: LocalPluginFiles,
    /// `repo_file` path → its bytes, or why they could not be fetched.
    fetched: HashMap<String, Result<Vec<u8>, String>>,
}

impl AgentPluginFiles {
    /// Fetches every `repo_file` entry of `plugins` at `commit_id`.
    pub async fn fetch(
        connection: &ServerConnection,
        plugin_dir: Option<PathBuf>,
        commit_id: &str,
        plugins: &Plugins,
    ) -> Self {
        let mut fetched = HashMap::new();
        for spec in plugins {
            if let PluginSource::RepoFile(path) = &spec.source
                && !fetched.contains_key(path.as_str())
            {
                let result = fetch_file(connection, commit_id, path.as_str()).await;
                if let Err(e) = &result {
                    tracing::warn!(plugin = %spec.name, path = %path, "cannot fetch the plugin from the server: {e}");
                }
                fetched.insert(path.as_str().to_owned(), result);
            }
        }
        Self {
            local: LocalPluginFiles {
                plugin_dir,
                repo_root: None,
            },
            fetched,
        }
    }

    /// Whether every repository file arrived; when not, fetching again later may succeed (the
    /// server was unreachable) and the catalog should be rebuilt then.
    pub fn complete(&self) -> bool {
        self.fetched.values().all(Result::is_ok)
    }
}

impl PluginFiles for AgentPluginFiles {
    fn read(&self, source: &PluginSource) -> Result<Vec<u8>, String> {
        match source {
            PluginSource::PluginDir(_) => self.local.read(source),
            PluginSource::RepoFile(path) => match self.fetched.get(path.as_str()) {
                Some(result) => result.clone(),
                None => Err(format!("{source} was not fetched from the server")),
            },
        }
    }
}

async fn fetch_file(
    connection: &ServerConnection,
    commit_id: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let mut stream = connection
        .configuration()
        .get_plugin_file(PluginFileRequest {
            commit_id: commit_id.to_owned(),
            path: path.to_owned(),
        })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|status| status.message().to_owned())?
    {
        if bytes.len() + chunk.data.len() > MAX_PLUGIN_FILE_SIZE {
            return Err(format!(
                "larger than the limit of {} MiB",
                MAX_PLUGIN_FILE_SIZE >> 20
            ));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(bytes)
}

/// Runs `load` off the runtime's threads (compiling a component takes milliseconds to seconds). A
/// panic in it, a bug in a plugin's compilation or the engine, becomes an error for this
/// configuration instead of taking the module down with it.
pub async fn off_the_runtime<T: Send + 'static>(
    load: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(load)
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(payload) => format!("panicked: {}", crate::module::panic_message(payload)),
            Err(e) => e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_while_loading_is_an_error() {
        let loaded =
            off_the_runtime(|| -> u32 { panic!("a component the engine chokes on") }).await;
        assert_eq!(
            loaded,
            Err("panicked: a component the engine chokes on".to_owned())
        );
        assert_eq!(off_the_runtime(|| 7).await, Ok(7));
    }
}
