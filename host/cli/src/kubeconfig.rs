//! `tether kubeconfig`: a kubeconfig whose cluster is one agent's cluster reached through tether-server's
//! Kubernetes API proxy (`SERVER/k8s-proxy/agents/NAME`), authenticated by the person's token.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct KubeconfigArgs {
    /// The server's people's listener: https://HOST:PORT.
    #[arg(long, env = "TETHER_PEOPLE_SERVER")]
    server: String,
    /// The agent whose cluster the kubeconfig reaches.
    #[arg(long)]
    agent: String,
    /// File holding your personal token (from `tether-server user create`).
    #[arg(long, env = "TETHER_USER_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Your personal token itself; prefer --token-file, which keeps it out of the process list.
    #[arg(long, env = "TETHER_USER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) of the server, instead of the system roots.
    #[arg(long)]
    certificate_authority: Option<PathBuf>,
    /// The context's default namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Where to write it (created with mode 0600); default: standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// The kubeconfig for `args`, as YAML.
pub(crate) fn render(args: &KubeconfigArgs) -> Result<String> {
    let base = args.server.trim_end_matches('/');
    if base.starts_with("http://") {
        // client-go leaves a kubeconfig's token out of every request to a plain-HTTP server
        // (kubernetes/kubectl#744), so the proxy would answer each one 401 "You must be logged in".
        bail!(
            "--server `{}` is plain HTTP, and kubectl sends no token over plain HTTP; give the people's \
             listener a certificate (`people.tls` or `tls` in the server configuration) and use https://",
            args.server
        );
    }
    if !base.starts_with("https://") {
        bail!("--server must be https://HOST:PORT, not `{}`", args.server);
    }
    let token = match (&args.token_file, &args.token) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("read the token file {}", file.display()))?,
        (None, Some(token)) => token.clone(),
        (None, None) => bail!("give your personal token with --token-file or TETHER_USER_TOKEN"),
    };
    let token = token.trim();
    if !token.starts_with("tthp_") {
        bail!(
            "the token is not a personal token (those start with `tthp_`; agent tokens cannot be used)"
        );
    }
    let name = format!("tether-{}", args.agent);
    let mut cluster = serde_json::json!({
        "server": format!("{base}/k8s-proxy/agents/{}", args.agent),
    });
    if let Some(ca) = &args.certificate_authority {
        let ca = std::path::absolute(ca).with_context(|| format!("resolve {}", ca.display()))?;
        cluster["certificate-authority"] = serde_json::json!(ca);
    }
    let mut context = serde_json::json!({"cluster": name, "user": name});
    if let Some(ns) = &args.namespace {
        context["namespace"] = serde_json::json!(ns);
    }
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    });
    Ok(serde_yaml::to_string(&config)?)
}

pub(crate) fn run(args: KubeconfigArgs) -> Result<std::process::ExitCode> {
    let text = render(&args)?;
    match &args.output {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .with_context(|| format!("write {}", path.display()))?;
            file.write_all(text.as_bytes())?;
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: &str, token: &str) -> KubeconfigArgs {
        KubeconfigArgs {
            server: server.into(),
            agent: "prod".into(),
            token_file: None,
            token: Some(token.into()),
            certificate_authority: None,
            namespace: Some("apps".into()),
            output: None,
        }
    }

    #[test]
    fn the_kubeconfig_points_at_the_agents_proxy() {
        let token = format!("tthp_{}", "ab".repeat(32));
        let text = render(&args("https://tether.example:8152/", &token)).unwrap();
        let config: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            "https://tether.example:8152/k8s-proxy/agents/prod"
        );
        assert_eq!(config["users"][0]["user"]["token"], token.as_str());
        assert_eq!(config["contexts"][0]["context"]["namespace"], "apps");
        assert_eq!(config["current-context"], "tether-prod");
    }

    #[test]
    fn agent_tokens_and_bad_urls_are_refused() {
        let agent_token = format!("tthr_{}", "ab".repeat(32));
        let e = render(&args("https://x", &agent_token)).unwrap_err();
        assert!(e.to_string().contains("personal token"), "{e}");
        let personal = format!("tthp_{}", "ab".repeat(32));
        let e = render(&args("tether.example", &personal)).unwrap_err();
        assert!(e.to_string().contains("--server"), "{e}");
        let e = render(&args("http://127.0.0.1:8152", &personal)).unwrap_err();
        assert!(e.to_string().contains("no token over plain HTTP"), "{e}");
    }
}
