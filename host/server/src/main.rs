//! `tether-server`: run the server, or administer its agents and tokens, check a config file, notify it
//! of a push. Every subcommand reads the same configuration file.

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tether_config::server::{ServerConfig, parse_server_config};
use tether_server::store::{SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The store file inside the data dir.
const STORE_FILE: &str = "tether.db";

#[derive(Debug, Parser)]
#[command(
    name = "tether-server",
    version,
    about = "Tether's server: agents, tokens, Git sources and the agent API"
)]
struct Cli {
    /// Server configuration file (YAML; see docs/SERVER.md). Without it every key has its default.
    #[arg(short, long, global = true, env = "TETHER_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (store and repository mirrors); overrides `data_dir` of the configuration.
    #[arg(long, global = true, env = "TETHER_SERVER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server for agents and the HTTP API until SIGINT or SIGTERM.
    Run,
    /// Validate a server configuration file without starting anything.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Register and list agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Create, list and revoke agent tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create people, issue and revoke their personal tokens (for the Kubernetes API proxy).
    #[command(subcommand)]
    User(tether_server::users::cli::UserCommand),
    /// Tell the running server that REPO changed (for a post-receive hook); needs `webhooks.secret_file`
    /// and a loopback HTTP listener (plain HTTP).
    Notify {
        /// Repository name as in the configuration's `repositories`.
        repository: String,
        /// Base URL of the server's HTTP API; default: the configured `listen.http` on this machine.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Register an agent.
    Register {
        /// Agent name: lower-case letters, digits and `-` (its config is `.tether/agents/NAME/config.yaml`).
        name: String,
        /// Repository (a name from `repositories`) holding the agent's configuration.
        #[arg(long)]
        config_repository: String,
    },
    /// List registered agents.
    List,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for an agent and print it once; only its hash is stored.
    Create {
        /// The agent the token authenticates.
        agent: String,
        /// A note shown by `token list` (where the token is used).
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this agent's tokens.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Revoke a token; the agent's next call with it is refused.
    Revoke {
        /// Token id as shown by `token list`.
        id: i64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(dispatch(cli))
}

fn load_config(cli: &Cli) -> Result<ServerConfig> {
    let mut config = match &cli.config {
        Some(path) => read_config(path)?,
        None => ServerConfig::default(),
    };
    if let Some(dir) = &cli.data_dir {
        config.data_dir.clone_from(dir);
    }
    Ok(config)
}

fn read_config(path: &Path) -> Result<ServerConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok(parse_server_config(&text, &path.display().to_string())?)
}

fn open_store(config: &ServerConfig) -> Result<SqliteStore> {
    Ok(SqliteStore::open(&config.data_dir.join(STORE_FILE))?)
}

async fn dispatch(cli: Cli) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Run => {
            let config = load_config(&cli)?;
            let store: Arc<dyn Store> = Arc::new(open_store(&config)?);
            let server = tether_server::start(config, store).await?;
            wait_for_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        Command::CheckConfig { file } => {
            let config = read_config(file)?;
            writeln!(
                out,
                "{}: ok ({} repositories, {} grants)",
                file.display(),
                config.repositories.len(),
                config.grants.len()
            )?;
        }
        Command::Agent(AgentCommand::Register {
            name,
            config_repository,
        }) => {
            let config = load_config(&cli)?;
            if config.repositories.get(config_repository).is_none() {
                bail!(
                    "repository `{config_repository}` is not in the configuration's `repositories`"
                );
            }
            let agent = open_store(&config)?.register_agent(
                name,
                config_repository,
                tether_server::store::now(),
            )?;
            writeln!(
                out,
                "registered agent {} (config repository {})",
                agent.name, agent.config_repository
            )?;
        }
        Command::Agent(AgentCommand::List) => {
            let config = load_config(&cli)?;
            writeln!(out, "{:<30} CONFIG REPOSITORY", "NAME")?;
            for agent in open_store(&config)?.agents()? {
                writeln!(out, "{:<30} {}", agent.name, agent.config_repository)?;
            }
        }
        Command::Token(TokenCommand::Create { agent, description }) => {
            let config = load_config(&cli)?;
            let new = tether_server::token::generate();
            let record = open_store(&config)?.create_token(
                agent,
                &new.hash,
                description,
                config.max_tokens_per_agent.0,
                tether_server::store::now(),
            )?;
            writeln!(
                out,
                "token {} for agent {} (shown only now):",
                record.id, record.agent
            )?;
            writeln!(out, "{}", new.secret.expose_secret())?;
        }
        Command::Token(TokenCommand::List { agent }) => {
            let config = load_config(&cli)?;
            writeln!(
                out,
                "{:<6} {:<24} {:<12} {:<12} {:<12} DESCRIPTION",
                "ID", "AGENT", "CREATED", "LAST USED", "REVOKED"
            )?;
            let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
            for t in open_store(&config)?.tokens(agent.as_deref())? {
                writeln!(
                    out,
                    "{:<6} {:<24} {:<12} {:<12} {:<12} {}",
                    t.id,
                    t.agent,
                    t.created_at,
                    time(t.last_used_at),
                    time(t.revoked_at),
                    t.description
                )?;
            }
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let config = load_config(&cli)?;
            let record = open_store(&config)?.revoke_token(*id, tether_server::store::now())?;
            writeln!(out, "revoked token {} of agent {}", record.id, record.agent)?;
        }
        Command::User(command) => {
            let config = load_config(&cli)?;
            command.run(
                &tether_server::users::open_store(&config.data_dir)?,
                &mut out,
            )?;
        }
        Command::Notify { repository, url } => {
            let config = load_config(&cli)?;
            let status = notify(&config, repository, url.as_deref()).await?;
            writeln!(out, "{status}")?;
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// POSTs a signed generic push event for `repository` to the server's HTTP API.
async fn notify(config: &ServerConfig, repository: &str, url: Option<&str>) -> Result<String> {
    let secret_file = config
        .webhooks
        .secret_file
        .as_ref()
        .context("`webhooks.secret_file` must be configured to notify the server")?;
    let secret = tether_server::push::read_secret(secret_file)?;
    let body = serde_json::to_vec(&serde_json::json!({ "repository": repository }))?;
    let signature = tether_server::push::sign(&secret, &body);
    let authority = match url {
        Some(url) => url
            .strip_prefix("http://")
            .context("--url must be http://HOST:PORT (the HTTP API on this machine)")?
            .trim_end_matches('/')
            .to_owned(),
        None if !config.listen.http.ip().is_loopback() => bail!(
            "the HTTP API listens on {} and so speaks TLS; `notify` sends plain HTTP to a loopback listener only (or use a Git host's webhook endpoint)",
            config.listen.http
        ),
        None => config.listen.http.to_string(),
    };
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .with_context(|| format!("connect to {authority}"))?;
    let head = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{}: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        tether_server::push::SIGNATURE_HEADER,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status_line = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !status_line.contains(" 202 ") {
        bail!("server answered {status_line}: {body}");
    }
    Ok(body)
}
