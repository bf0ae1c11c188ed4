//! The tunnel service `prometheus`: one person's request, handed to the proxy plugin in force, its
//! answer streamed back. The agent checks `user_access` again (the server did too), so a server bug
//! cannot widen access. A plugin that fails or hangs costs its own call only: it runs on a blocking
//! thread under its limits, and the tunnel stream gets an error answer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tether_plugin_host::HttpRequest;
use tether_rpc::limits::MAX_CHUNK_SIZE;
use tether_rpc::tunnel::v1::{
    ConnectRequest, ConnectResponse, Error, Header, HeaderValues, Message, RequestInfo, Trailer,
    connect_request::Msg, connect_response,
};
use tether_rpc::tunnel_stream::{ServerOrder, ServerStep};
use tokio::sync::{mpsc, watch};
use tonic::Streaming;

use super::Availability;
use crate::module::ConfigWatch;
use crate::tunnel::TunnelError;

/// A Prometheus request is a query or a list of selectors; more is refused.
const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// How long the agent waits for the server to end a stream it has answered completely.
const SERVER_END_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct PrometheusService {
    availability: watch::Receiver<Availability>,
    config: ConfigWatch,
}

impl PrometheusService {
    pub fn new(availability: watch::Receiver<Availability>, config: ConfigWatch) -> Self {
        Self {
            availability,
            config,
        }
    }

    /// Serves the request `info` opened; its body follows on `inbound`, the answer goes to `tx`.
    pub async fn serve(
        &self,
        info: RequestInfo,
        inbound: &mut Streaming<ConnectResponse>,
        order: ServerOrder,
        tx: &mpsc::Sender<ConnectRequest>,
    ) -> Result<(), TunnelError> {
        self.answer(info, inbound, order, tx).await?;
        // The answer may still be queued towards the server; ending the call now would reset the
        // HTTP/2 stream and drop it. The server ends the stream once it has read the last message.
        let _ = tokio::time::timeout(SERVER_END_WAIT, inbound.message()).await;
        Ok(())
    }

    async fn answer(
        &self,
        info: RequestInfo,
        inbound: &mut Streaming<ConnectResponse>,
        mut order: ServerOrder,
        tx: &mpsc::Sender<ConnectRequest>,
    ) -> Result<(), TunnelError> {
        let mut body = BytesMut::new();
        loop {
            let message = inbound.message().await?.ok_or(TunnelError::Cancelled)?;
            match (order.accept(message.msg.as_ref())?, message.msg) {
                (ServerStep::Message, Some(connect_response::Msg::Message(m))) => {
                    if body.len() + m.data.len() > MAX_REQUEST_BODY {
                        return refuse(
                            tx,
                            format!("the request body is over {MAX_REQUEST_BODY} bytes"),
                        )
                        .await;
                    }
                    body.extend_from_slice(&m.data);
                }
                (ServerStep::CloseSend, _) => break,
                _ => unreachable!("the order allows only Message or CloseSend after RequestInfo"),
            }
        }
        if let Err(why) = self.granted(&info) {
            return refuse(tx, why).await;
        }
        let availability = self.availability.borrow().clone();
        let instance = match availability {
            Availability::Ready(instance) => instance,
            Availability::Unavailable(why) => {
                return respond(tx, 503, &prometheus_error("unavailable", &why)).await;
            }
        };
        let request = plugin_request(&info, body.freeze());
        tracing::debug!(method = %info.method, path = %info.path_and_query, "tunnelled Prometheus request");
        let call = tokio::task::spawn_blocking(move || {
            instance.plugin.handle(&request, instance.transport.clone())
        });
        let result = tokio::select! {
            result = call => result,
            // Anything from the server now is the end of the stream: the person has gone. The
            // plugin's call ends by its own limits.
            _ = inbound.message() => return Err(TunnelError::Cancelled),
        };
        match result {
            Ok(Ok(response)) => {
                let content_type = response
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.clone());
                send_response(
                    tx,
                    response.status,
                    content_type,
                    Bytes::from(response.body),
                )
                .await
            }
            Ok(Err(e)) => {
                tracing::warn!("prometheus proxy plugin: {e}");
                respond(tx, 502, &prometheus_error("internal", &e.to_string())).await
            }
            Err(e) => {
                respond(
                    tx,
                    502,
                    &prometheus_error("internal", &format!("the plugin's call: {e}")),
                )
                .await
            }
        }
    }

    fn granted(&self, info: &RequestInfo) -> Result<(), String> {
        let config = self.config.borrow().clone();
        let Some(access) = config.as_ref().and_then(|c| c.config.user_access.as_ref()) else {
            return Err(
                "this agent's configuration has no `user_access`: nobody may use it".to_owned(),
            );
        };
        let user = info.user.as_ref().ok_or("the request names no user")?;
        if !access.grants(&user.name, &user.groups) {
            return Err(format!(
                "user `{}` is not granted this agent by its configuration's `user_access`",
                user.name
            ));
        }
        Ok(())
    }
}

/// The request as the plugin sees it: the path, the query as decoded pairs, the content type only
/// (the server already dropped credentials; nothing else matters to Prometheus' read API).
fn plugin_request(info: &RequestInfo, body: Bytes) -> HttpRequest {
    let (path, query) = info
        .path_and_query
        .split_once('?')
        .unwrap_or((info.path_and_query.as_str(), ""));
    let headers = info
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .flat_map(|(k, v)| v.values.iter().map(|v| (k.to_ascii_lowercase(), v.clone())))
        .collect();
    HttpRequest {
        method: info.method.clone(),
        target: path.to_owned(),
        query: form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body: body.to_vec(),
    }
}

fn prometheus_error(error_type: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"status": "error", "errorType": error_type, "error": message})
        .to_string()
        .into_bytes()
}

async fn respond(
    tx: &mpsc::Sender<ConnectRequest>,
    status: u16,
    json: &[u8],
) -> Result<(), TunnelError> {
    send_response(
        tx,
        status,
        Some("application/json".to_owned()),
        Bytes::copy_from_slice(json),
    )
    .await
}

async fn send_response(
    tx: &mpsc::Sender<ConnectRequest>,
    status: u16,
    content_type: Option<String>,
    mut body: Bytes,
) -> Result<(), TunnelError> {
    let headers = content_type
        .into_iter()
        .map(|v| ("content-type".to_owned(), HeaderValues { values: vec![v] }))
        .collect();
    send(
        tx,
        Msg::Header(Header {
            status: u32::from(status),
            headers,
        }),
    )
    .await?;
    while !body.is_empty() {
        let chunk = body.split_to(body.len().min(MAX_CHUNK_SIZE));
        send(tx, Msg::Message(Message { data: chunk })).await?;
    }
    send(tx, Msg::Trailer(Trailer {})).await
}

async fn send(tx: &mpsc::Sender<ConnectRequest>, msg: Msg) -> Result<(), TunnelError> {
    tx.send(ConnectRequest { msg: Some(msg) })
        .await
        .map_err(|_| TunnelError::ServerGone)
}

async fn refuse(tx: &mpsc::Sender<ConnectRequest>, why: String) -> Result<(), TunnelError> {
    tracing::info!("tunnelled Prometheus request refused: {why}");
    send(tx, Msg::Error(Error { message: why })).await
}
