//! `tether-server user ...`: people and their personal tokens, on the store in the data dir.

use super::store::UserStore;
use super::token;
use secrecy::ExposeSecret;
use std::io::Write;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user and issue their first personal token (printed once; only its hash is stored).
    Create {
        /// User name: lower-case letters, digits and `-` (Kubernetes sees `tether:user:NAME`).
        name: String,
        /// A group of the user (repeatable; Kubernetes sees `tether:group:G`).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The only agent the token reaches; default: any agent whose user_access grants the user.
        #[arg(long)]
        agent: Option<String>,
        /// Days until the token expires.
        #[arg(long, default_value_t = token::DEFAULT_EXPIRY_DAYS)]
        expires_in_days: u32,
    },
    /// Issue another personal token for a user.
    Token {
        name: String,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = token::DEFAULT_EXPIRY_DAYS)]
        expires_in_days: u32,
        /// A note shown by `user tokens`.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List users and their groups.
    List,
    /// List personal tokens (never their secrets).
    Tokens {
        /// Only this user's tokens.
        name: Option<String>,
    },
    /// Revoke a personal token; the next request with it is refused.
    Revoke {
        /// Token id as shown by `user tokens`.
        id: i64,
    },
}

impl UserCommand {
    pub fn run(&self, users: &UserStore, out: &mut impl Write) -> anyhow::Result<()> {
        let now = crate::store::now();
        let issue = |name: &str, agent: &Option<String>, days: u32, description: &str| {
            let expires_at = token::expiry(now, days).ok_or_else(|| {
                anyhow::anyhow!(
                    "--expires-in-days {days} must be between 1 and {}",
                    token::MAX_EXPIRY_DAYS
                )
            })?;
            let new = token::generate();
            let record = users.create_token(
                name,
                &new.hash,
                agent.as_deref(),
                description,
                expires_at,
                now,
            )?;
            anyhow::Ok((new, record))
        };
        match self {
            UserCommand::Create {
                name,
                groups,
                agent,
                expires_in_days,
            } => {
                let user = users.create_user(name, groups, now)?;
                let (new, record) = issue(name, agent, *expires_in_days, "first token")?;
                writeln!(
                    out,
                    "created user {} (groups: {}); token {} (expires at {}, shown only now):",
                    user.name,
                    user.groups.join(", "),
                    record.id,
                    record.expires_at
                )?;
                writeln!(out, "{}", new.secret.expose_secret())?;
            }
            UserCommand::Token {
                name,
                agent,
                expires_in_days,
                description,
            } => {
                let (new, record) = issue(name, agent, *expires_in_days, description)?;
                writeln!(
                    out,
                    "token {} for user {} (expires at {}, shown only now):",
                    record.id, record.user, record.expires_at
                )?;
                writeln!(out, "{}", new.secret.expose_secret())?;
            }
            UserCommand::List => {
                writeln!(out, "{:<30} GROUPS", "NAME")?;
                for user in users.users()? {
                    writeln!(out, "{:<30} {}", user.name, user.groups.join(","))?;
                }
            }
            UserCommand::Tokens { name } => {
                writeln!(
                    out,
                    "{:<6} {:<20} {:<20} {:<12} {:<12} {:<12} DESCRIPTION",
                    "ID", "USER", "AGENT", "CREATED", "EXPIRES", "REVOKED"
                )?;
                for t in users.tokens(name.as_deref())? {
                    writeln!(
                        out,
                        "{:<6} {:<20} {:<20} {:<12} {:<12} {:<12} {}",
                        t.id,
                        t.user,
                        t.agent.as_deref().unwrap_or("*"),
                        t.created_at,
                        t.expires_at,
                        t.revoked_at
                            .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                        t.description
                    )?;
                }
            }
            UserCommand::Revoke { id } => {
                let record = users.revoke_token(*id, now)?;
                writeln!(out, "revoked token {} of user {}", record.id, record.user)?;
            }
        }
        Ok(())
    }
}
