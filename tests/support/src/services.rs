//! Redis and Prometheus from Debian's packages, started on free loopback ports for one test.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{Guarded, wait_for_line};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis server on loopback, with no persistence. Stopped when dropped.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    _process: Guarded,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tether-redis-").tempdir()?;
        let port = free_port()?;
        let mut cmd = Command::new(binary("redis-server", "redis-server")?);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--logfile", ""])
            .arg("--dir")
            .arg(dir.path());
        let (mut process, output) = Guarded::spawn("redis-server", &mut cmd)?;
        wait_for_line(&mut process, &output, START_TIMEOUT, |l| {
            l.contains("Ready to accept connections")
        })?;
        Ok(Self {
            port,
            _process: process,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A Prometheus server on loopback that scrapes itself every second, plus any extra scrape
/// configurations given. Stopped when dropped.
#[derive(Debug)]
pub struct Prometheus {
    port: u16,
    _process: Guarded,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping only itself.
    pub fn start() -> Result<Self> {
        Self::start_with_scrape_configs(&[])
    }

    /// Starts Prometheus with these extra `scrape_configs` entries (YAML, one per element).
    pub fn start_with_scrape_configs(extra: &[&str]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tether-prometheus-")
            .tempdir()?;
        let port = free_port()?;
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        );
        for scrape in extra {
            for (i, line) in scrape.trim_end().lines().enumerate() {
                config.push_str(if i == 0 { "  - " } else { "    " });
                config.push_str(line);
                config.push('\n');
            }
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config)?;
        let mut cmd = Command::new(binary("prometheus", "prometheus")?);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle");
        let (mut process, output) = Guarded::spawn("prometheus", &mut cmd)?;
        wait_for_line(&mut process, &output, START_TIMEOUT, |l| {
            l.contains("Server is ready to receive web requests")
        })?;
        Ok(Self {
            port,
            _process: process,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A port free on loopback right now. The server that takes it binds it moments later; nothing
/// else on a test machine hands out ports in that window in practice.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn binary(name: &str, package: &str) -> Result<std::path::PathBuf> {
    binary_in(name, package, "/usr/bin")
}

/// `dir/name`, installed by Debian's `package`.
pub(crate) fn binary_in(name: &str, package: &str, dir: &str) -> Result<std::path::PathBuf> {
    let path = std::path::Path::new(dir).join(name);
    if path.exists() {
        return Ok(path);
    }
    Err(anyhow::anyhow!("{} is missing", path.display())).with_context(|| {
        format!("install Debian's {package} package (scripts/test does: apt-get install {package})")
    })
}
