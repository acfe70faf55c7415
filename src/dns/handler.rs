//! The request handler in front of the catalog: what the catalog cannot express.
//!
//! hickory's catalog turns every zone-handler error other than NXDOMAIN, REFUSED and NOTAUTH
//! into NOERROR, so "the table is not loaded yet" must be answered here, explicitly, as
//! SERVFAIL.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, ResponseCode};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{Catalog, MessageResponseBuilder, ZoneHandler};
use tracing::{debug, error};

use super::live::LiveZone;

/// EDNS UDP payload size we advertise (the DNS flag day 2020 value, safe from fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Routes each request: the live zone's failure answers here, everything else to the catalog.
pub struct DnsHandler {
    catalog: Catalog,
    live: Arc<LiveZone>,
}

impl DnsHandler {
    /// A handler serving `catalog`, where `live` is also registered.
    pub fn new(catalog: Catalog, live: Arc<LiveZone>) -> Self {
        Self { catalog, live }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        if let Ok(info) = request.request_info() {
            if self.live.origin().zone_of(info.query.name()) && !self.live.table().load().ready {
                debug!(query = %info.query, "registry not loaded yet: SERVFAIL");
                return send_error(request, ResponseCode::ServFail, response_handle).await;
            }
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// Sends an empty answer with `code`, echoing EDNS when the client used it.
async fn send_error<R: ResponseHandler>(
    request: &Request,
    code: ResponseCode,
    mut response_handle: R,
) -> ResponseInfo {
    let edns = request.edns.as_ref().map(|_| {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns
    });
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref())
        .error_msg(&request.metadata, code);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            error!(error = %e, "failed to send response");
            let mut metadata = request.metadata;
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_server::proto::op::Header {
                metadata,
                counts: Default::default(),
            })
        }
    }
}
