//! Requests the strict wire parser declined, read by hickory: errors of the message as a whole
//! are answered here; one question in an unusual shape is placed like a plain query.

use std::net::SocketAddr;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_server::proto::serialize::binary::BinEncodable;

use super::answer::answer_query;
use super::{Answer, Route, Router, Shaped};
use crate::dns::reply::{error_reply, Limit};
use crate::table::Snapshot;
use crate::wire::{self, QueryEdns, WireQuery};

impl Router {
    /// A request the strict parser declined: errors of the message as a whole are answered
    /// from hickory's reading of it; one question in an unusual shape (TSIG, several
    /// additional records, QCLASS ANY…) is placed like a plain query.
    pub(super) fn answer_message(
        &self,
        snapshot: &Snapshot,
        bytes: &[u8],
        message: &Message,
        src: SocketAddr,
        protocol: Protocol,
        out: Vec<u8>,
    ) -> (Answer, Route, u16, Shaped) {
        let qtype = message.queries.first().map_or(0, |q| q.query_type().into());
        if message.metadata.message_type == MessageType::Response {
            return (Answer::Drop, Route::Drop, qtype, Shaped::default());
        }
        let limit = Limit::new(message.edns.as_ref(), protocol);
        let refuse = |code| {
            let answer = Answer::Reply(error_reply(message, code, limit));
            (answer, Route::Error(code), qtype, Shaped::default())
        };
        if message.metadata.op_code != OpCode::Query {
            return refuse(ResponseCode::NotImp);
        }
        if message.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return refuse(ResponseCode::BADVERS);
        }
        let [question] = message.queries.as_slice() else {
            return refuse(ResponseCode::FormErr);
        };
        // The question as asked; hickory's encoding of it when the bytes do not read plainly.
        let encoded;
        let asked = match wire::question_bytes(bytes) {
            Some(asked) => asked,
            None => {
                encoded = question.to_bytes().unwrap_or_default();
                &encoded
            }
        };
        let edns = message.edns.as_ref().map(|e| QueryEdns {
            payload: e.max_payload(),
            version: e.version(),
            dnssec_ok: e.flags().dnssec_ok,
            compact_ok: e.flags().z & crate::wire::EDNS_FLAG_CO != 0,
            // Locality reads Client Subnet from plain queries only.
            ecs: None,
        });
        // hickory read a whole header, so the first four bytes are there.
        let Some(head) = bytes.get(..4).and_then(|h| h.try_into().ok()) else {
            return refuse(ResponseCode::FormErr);
        };
        let query = WireQuery::new(
            head,
            asked,
            question.name(),
            question.query_type().into(),
            question.query_class().into(),
            edns,
        );
        let Some(query) = query else {
            return refuse(ResponseCode::FormErr);
        };
        match self.place(snapshot, &query, src) {
            Route::Error(code) => refuse(code),
            route => {
                // Locality reads plain queries only: this one keeps to every instance.
                let (answer, shaped) = answer_query(
                    snapshot,
                    &self.statics,
                    self.dnssec.as_deref(),
                    &query,
                    route,
                    protocol,
                    self.max_answers,
                    None,
                    out,
                );
                (answer, route, qtype, shaped)
            }
        }
    }
}
