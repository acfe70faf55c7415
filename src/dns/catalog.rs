//! hickory's [`Catalog`] for the names no zone of ours holds: the forwarder. The router decides
//! that a request goes here; the catalog builds the answer and [`Capture`] takes it as bytes,
//! so UDP and TCP send it their own way.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::proto::op::{Edns, Message};
use hickory_server::proto::rr::{LowerName, Name, Record};
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{Catalog, MessageResponse, ZoneHandler};
use tracing::info;

use super::forward;
use super::reply::{
    fit, form_error, server_failure, Limit, EDNS_PAYLOAD, REPLY_CAPACITY, TCP_MESSAGE_MAX,
};
use crate::wire::FLAG_TC;

/// A catalog that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The forwarder.
    #[error(transparent)]
    Forward(#[from] forward::ForwardError),
}

/// Builds the catalog: the forwarder at the root when there are `upstreams`, else empty.
pub fn build(upstreams: Option<&[SocketAddr]>) -> Result<Catalog, CatalogError> {
    let mut catalog = Catalog::new();
    if let Some(upstreams) = upstreams {
        let text: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
        info!(upstreams = %text.join(","), "forwarding other names");
        catalog.upsert(
            LowerName::new(&Name::root()),
            vec![Arc::new(forward::forwarder(upstreams)?) as Arc<dyn ZoneHandler>],
        );
    }
    Ok(catalog)
}

/// Asks `catalog` to answer `bytes` (hickory reads the request itself). `None` when the
/// catalog sent nothing, which the router treats as a bug.
pub async fn ask(
    catalog: &Catalog,
    bytes: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    let Ok(request) = Request::from_bytes(bytes.to_vec(), src, protocol) else {
        return form_error(bytes);
    };
    let whole = ask_request(catalog, &request).await?;
    Some(fit_reply(
        whole,
        Limit::new(request.edns.as_ref(), protocol),
    ))
}

/// [`ask`] without the size rules: the reply as the catalog encoded it (up to a TCP
/// message), for the answer cache, which keeps whole replies and fits each copy it sends.
pub async fn ask_whole(
    catalog: &Catalog,
    bytes: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    match Request::from_bytes(bytes.to_vec(), src, protocol) {
        Ok(request) => ask_request(catalog, &request).await,
        Err(_) => form_error(bytes),
    }
}

async fn ask_request(catalog: &Catalog, request: &Request) -> Option<Vec<u8>> {
    let capture = Capture {
        dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        out: Arc::new(Mutex::new(None)),
    };
    catalog
        .handle_request::<Capture, TokioTime>(request, capture.clone())
        .await;
    let bytes = capture.out.lock().ok()?.take()?;
    Some(bytes)
}

/// A reply the catalog encoded, within `limit` (the rules of [`fit`]).
pub fn fit_reply(bytes: Vec<u8>, limit: Limit) -> Vec<u8> {
    // Within the limit and complete (no TC from hickory's own encoder): send as it is.
    if bytes.len() <= limit.size && bytes.get(2).is_some_and(|flags| flags & FLAG_TC == 0) {
        return bytes;
    }
    match Message::from_vec(&bytes) {
        Ok(reply) if !reply.metadata.truncation => fit(reply, limit),
        _ => fit(server_failure(bytes), limit),
    }
}

/// Replies that the catalog builds carry our EDNS instead of an echo of the client's size.
static OUR_EDNS: LazyLock<Edns> = LazyLock::new(|| {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns
});
/// [`OUR_EDNS`] with the DO bit, for clients that set it.
static OUR_EDNS_DO: LazyLock<Edns> = LazyLock::new(|| {
    let mut edns = OUR_EDNS.clone();
    edns.set_dnssec_ok(true);
    edns
});

/// A [`ResponseHandler`] that encodes into memory.
#[derive(Clone)]
struct Capture {
    dnssec_ok: bool,
    out: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        if response.edns().is_some_and(|e| e.rcode_high() == 0) {
            response.set_edns(if self.dnssec_ok {
                &OUR_EDNS_DO
            } else {
                &OUR_EDNS
            });
        }
        let mut bytes = Vec::with_capacity(REPLY_CAPACITY);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(TCP_MESSAGE_MAX as u16);
        let info = response.destructive_emit(&mut encoder)?;
        if let Ok(mut out) = self.out.lock() {
            *out = Some(bytes);
        }
        Ok(info)
    }
}
