//! `user_access:` in the agent's `config.yaml` — which of the server's people may reach this agent's
//! cluster through the tunnel, and as whom the agent makes their requests (GitLab's `user_access`, with
//! Tether's users and groups in place of GitLab's projects and groups).
//!
//! ```yaml
//! user_access:
//!   access_as:
//!     user: {}            # impersonate tether:user:NAME with groups tether:group:G (the cluster's RBAC decides)
//!     # agent: {}         # or: the agent's own ServiceAccount, whoever asks
//!     # impersonate: {username: viewer, groups: [readers]}   # or: one fixed identity
//!   users: [alice]
//!   groups: [sre]
//! ```
//!
//! Without `user_access` nobody is granted anything; a grant names at least one user or group.

use serde::Deserialize;

/// Prefix of the Kubernetes user a person is impersonated as: `tether:user:alice`.
pub const IMPERSONATED_USER_PREFIX: &str = "tether:user:";
/// Prefix of the Kubernetes groups a person is impersonated with: `tether:group:sre`.
pub const IMPERSONATED_GROUP_PREFIX: &str = "tether:group:";

/// Who may use the agent and as whom their requests run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "UserAccessFields")]
pub struct UserAccess {
    pub access_as: AccessAs,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// As whom the agent sends a person's request to the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessAs {
    /// The agent's own ServiceAccount.
    Agent,
    /// `tether:user:NAME` with groups `tether:group:G`, one per group of the person.
    User,
    /// A fixed identity, whoever the person is.
    Impersonate {
        username: String,
        groups: Vec<String>,
    },
}

impl UserAccess {
    /// Whether the person `user`, member of `groups`, is granted this agent.
    pub fn grants(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || self.groups.iter().any(|g| groups.contains(g))
    }
}

/// Person and group names appear in Kubernetes user names and in tokens' listings.
pub fn check_person_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}` is invalid: use lower-case letters, digits and `-`, starting with a letter, at most 63 characters"
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserAccessFields {
    access_as: AccessAsFields,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessAsFields {
    agent: Option<Empty>,
    user: Option<Empty>,
    impersonate: Option<ImpersonateFields>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImpersonateFields {
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

impl TryFrom<UserAccessFields> for UserAccess {
    type Error = String;

    fn try_from(f: UserAccessFields) -> Result<Self, String> {
        let access_as = match (f.access_as.agent, f.access_as.user, f.access_as.impersonate) {
            (Some(_), None, None) => AccessAs::Agent,
            (None, Some(_), None) => AccessAs::User,
            (None, None, Some(i)) => {
                if i.username.trim().is_empty() {
                    return Err("access_as.impersonate.username is empty".to_owned());
                }
                AccessAs::Impersonate {
                    username: i.username,
                    groups: i.groups,
                }
            }
            _ => {
                return Err(
                    "access_as takes exactly one of `agent: {}`, `user: {}` or `impersonate: {username, groups}`"
                        .to_owned(),
                );
            }
        };
        if f.users.is_empty() && f.groups.is_empty() {
            return Err(
                "user_access grants nobody: list at least one entry in `users` or `groups`"
                    .to_owned(),
            );
        }
        for user in &f.users {
            check_person_name("user", user)?;
        }
        for group in &f.groups {
            check_person_name("group", group)?;
        }
        Ok(UserAccess {
            access_as,
            users: f.users,
            groups: f.groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::agent::parse_agent_config;

    use super::*;

    fn parse(yaml: &str) -> Result<Option<UserAccess>, String> {
        parse_agent_config(yaml, "config.yaml")
            .map(|c| c.user_access)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_access_as_is_read() {
        let access =
            parse("user_access:\n  access_as: {user: {}}\n  users: [alice]\n  groups: [sre]\n")
                .unwrap()
                .unwrap();
        assert_eq!(access.access_as, AccessAs::User);
        assert!(access.grants("alice", &[]));
        assert!(access.grants("bob", &["sre".to_owned()]));
        assert!(!access.grants("bob", &["dev".to_owned()]));
        let access = parse("user_access:\n  access_as: {agent: {}}\n  groups: [dev]\n")
            .unwrap()
            .unwrap();
        assert_eq!(access.access_as, AccessAs::Agent);
        let access = parse(
            "user_access:\n  access_as: {impersonate: {username: viewer, groups: [readers]}}\n  users: [alice]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            access.access_as,
            AccessAs::Impersonate {
                username: "viewer".into(),
                groups: vec!["readers".into()]
            }
        );
        assert_eq!(
            parse("gitops: {}\n").unwrap(),
            None,
            "no grant without user_access"
        );
    }

    #[test]
    fn bad_user_access_is_refused_with_its_line() {
        let e =
            parse("gitops: {}\nuser_access:\n  access_as: {agent: {}, user: {}}\n  users: [a]\n")
                .unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        assert!(e.contains("config.yaml:"), "{e}");
        let e = parse("user_access:\n  access_as: {agent: {}}\n").unwrap_err();
        assert!(e.contains("grants nobody"), "{e}");
        let e = parse("user_access:\n  access_as: {agent: {}}\n  users: [Alice]\n").unwrap_err();
        assert!(e.contains("user `Alice` is invalid"), "{e}");
        let e = parse("user_access:\n  access_as: {agent: {}}\n  users: [a]\n  projects: [x]\n")
            .unwrap_err();
        assert!(e.contains("projects"), "{e}");
    }
}
