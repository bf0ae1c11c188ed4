//! The reverse tunnel end to end: the real kubectl (built with the local control plane) talks to the
//! agent's cluster through tether-server's people's listener, the server's tunnel broker and the agent's
//! pool of Tunnel streams — and hostile or unlucky callers get the answers they should.

use anyhow::{Context, Result};
use tether_e2e::tunnel::{DEADLINE, Setup, grant_config_maps};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMPERSONATE_ALICE: &str =
    "user_access:\n  access_as: {user: {}}\n  users: [alice]\n  groups: [sre]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_leaving_cancels_the_agents_call_and_frees_the_stream() -> Result<()> {
    let setup = Setup::start(&[("prod", IMPERSONATE_ALICE)]).await?;
    let agent = setup.agent("prod").await?;
    grant_config_maps(setup.ns.name(), "alice").await?;
    let (_, token) = setup.person("alice", &[], None)?;
    let mut busy = agent.tunnel_pool.busy();
    let mut stream = tokio::net::TcpStream::connect(setup.people()).await?;
    let request = format!(
        "GET /k8s-proxy/agents/prod/api/v1/namespaces/{}/configmaps?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n",
        setup.ns.name()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut first = [0u8; 12];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut first)).await??;
    assert_eq!(&first, b"HTTP/1.1 200");
    assert_eq!(*busy.borrow(), 1, "the watch holds one stream of the pool");
    drop(stream);
    // The server drops the tunnel stream; the agent drops its watch and its worker is idle again.
    tokio::time::timeout(DEADLINE, busy.wait_for(|n| *n == 0))
        .await
        .context("the agent's call was not cancelled")??;
    agent.shutdown().await;
    setup.server.shutdown().await;
    Ok(())
}
