//! nginx from Debian's package as an HTTP/1.1-only reverse proxy on a free loopback port: the kind
//! of proxy that makes agents use the WebSocket transport. It speaks no HTTP/2 (no `http2` on its
//! listener; nginx proxies upstream in HTTP/1.x anyway) and writes an access log the tests read to
//! see what went through it. Stopped when dropped, and with the test process however that ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{Guarded, wait_for_line};
use crate::services::{binary_in, free_port};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the proxy treats what passes through it.
#[derive(Debug, Clone)]
pub struct NginxOptions {
    /// Where it forwards every request.
    pub upstream: SocketAddr,
    /// Forward `Upgrade` and `Connection: upgrade` (what a WebSocket needs). Off, nginx drops
    /// them, as a proxy configured without WebSocket support does.
    pub forward_upgrades: bool,
    /// nginx closes a proxied connection, upgraded ones included, after this long without
    /// traffic (`proxy_read_timeout` and `proxy_send_timeout`; nginx's default is 60 s).
    pub idle_timeout: Duration,
}

impl NginxOptions {
    /// Forwarding upgrades to `upstream`, with nginx's default idle timeout.
    pub fn websocket(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            forward_upgrades: true,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A running nginx. Stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    port: u16,
    access_log: PathBuf,
    _process: Guarded,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(options: &NginxOptions) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tether-nginx-").tempdir()?;
        // nginx's worker runs as `nobody` when started as root, and must reach its temp paths.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        }
        let port = free_port()?;
        let d = dir.path().display();
        let access_log = dir.path().join("access.log");
        let upgrade_headers = if options.forward_upgrades {
            "proxy_set_header Upgrade $http_upgrade;\n      \
             proxy_set_header Connection $connection_upgrade;"
        } else {
            "proxy_set_header Connection \"\";"
        };
        let idle = options.idle_timeout.as_secs().max(1);
        let config = format!(
            r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
  log_format tether '$remote_addr "$request" $server_protocol $status upgrade=$http_upgrade seconds=$request_time';
  access_log {access};
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' close;
  }}
  server {{
    # HTTP/1.1 only: no `http2` here.
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      {upgrade_headers}
      proxy_read_timeout {idle}s;
      proxy_send_timeout {idle}s;
      proxy_buffering off;
    }}
  }}
}}
"#,
            access = format_args!("{} tether", access_log.display()),
            upstream = options.upstream,
        );
        let config_file = dir.path().join("nginx.conf");
        std::fs::write(&config_file, config)?;
        let mut cmd = Command::new(binary_in("nginx", "nginx", "/usr/sbin")?);
        cmd.args(["-e", "stderr", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&config_file);
        let (mut process, output) = Guarded::spawn("nginx", &mut cmd)?;
        wait_for_line(&mut process, &output, START_TIMEOUT, |l| {
            l.contains("start worker process ")
        })
        .context("nginx did not start")?;
        Ok(Self {
            port,
            access_log,
            _process: process,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The error log so far (why nginx closed a connection, among others).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }

    /// The access log so far, one line per finished request:
    /// `ADDR "REQUEST LINE" PROTOCOL STATUS upgrade=UPGRADE seconds=DURATION`. An upgraded
    /// connection is logged when it closes.
    pub fn access_log(&self) -> Result<String> {
        match std::fs::read_to_string(&self.access_log) {
            Ok(log) => Ok(log),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).with_context(|| format!("read {}", self.access_log.display())),
        }
    }
}
