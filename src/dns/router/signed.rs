//! The requests that are more than one question and one reply: a TCP request whose reply is a
//! zone transfer's messages, and a request signed with TSIG (verified first, its replies
//! signed).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, ResponseCode};
use tracing::debug;

use super::{Answer, Route, Router, Shaped, TRANSFERS_REFUSED};
use crate::dns::reply::{error_reply, form_error, Limit, REPLY_CAPACITY};
use crate::dns::{transfer, tsig};
use crate::table::Snapshot;

impl Router {
    /// Answers one request received over TCP: its reply, or a zone transfer's messages.
    pub async fn answer_tcp(&self, bytes: &[u8], src: SocketAddr) -> Vec<Vec<u8>> {
        let stats = self.metrics.shared();
        let out = Vec::with_capacity(REPLY_CAPACITY);
        match self.answer_now(bytes, src, Protocol::Tcp, out, stats) {
            Answer::Reply(reply) => vec![reply],
            Answer::Drop => Vec::new(),
            Answer::Later(pending) if pending.route == Route::Transfer => {
                let messages = self.transfer(bytes, src, Protocol::Tcp);
                if let Some(first) = messages.first() {
                    stats.answered(
                        pending.route.path(),
                        pending.qtype,
                        first,
                        Some(pending.received.elapsed()),
                    );
                }
                messages
            }
            Answer::Later(pending) => self
                .answer_later(bytes, src, Protocol::Tcp, pending)
                .await
                .into_iter()
                .collect(),
        }
    }

    /// A zone transfer's messages (one error message when it cannot be made), signed when the
    /// request was; REFUSED unsigned when `--allow-transfer` names keys and none signed it.
    pub(super) fn transfer(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Vec<Vec<u8>> {
        let Ok(request) = Message::from_vec(bytes) else {
            return form_error(bytes).into_iter().collect();
        };
        let limit = Limit::new(request.edns.as_ref(), protocol);
        let verified = match tsig::verify(&self.tsig, bytes, &request) {
            Ok(verified) => verified,
            Err(refusal) => {
                self.tsig_stats.count(Some(refusal));
                let mut reply = error_reply(&request, ResponseCode::NotAuth, limit);
                tsig::append_error(&mut reply, &request, refusal);
                return vec![reply];
            }
        };
        let required = self.allow_transfer.keys();
        let signed_by = verified.as_ref().map(|v| v.key.name().to_ascii());
        if !required.is_empty() && !signed_by.is_some_and(|name| required.contains(&name)) {
            self.tsig_stats.count(None);
            if let Some(suppressed) = TRANSFERS_REFUSED.allow() {
                debug!(%src, suppressed, "zone transfer refused: not signed by an allowed key");
            }
            return vec![error_reply(&request, ResponseCode::Refused, limit)];
        }
        let (mut messages, kind) = transfer::axfr(bytes, &request, &self.table.load(), src, limit);
        if let Some(kind) = kind {
            self.metrics.transfers[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(verified) = &verified {
            tsig::sign_all(verified, &mut messages);
        }
        messages
    }

    /// A request carrying a TSIG record: verified before it is answered (NOTAUTH, with the
    /// TSIG error, when it does not verify), its reply signed. Transfers verify and sign in
    /// their task.
    pub(super) fn answer_signed(
        &self,
        snapshot: &Snapshot,
        bytes: &[u8],
        message: &Message,
        src: SocketAddr,
        protocol: Protocol,
        out: Vec<u8>,
    ) -> (Answer, Route, u16, Shaped) {
        let qtype = message.queries.first().map_or(0, |q| q.query_type().into());
        match tsig::verify(&self.tsig, bytes, message) {
            Ok(Some(verified)) => {
                let (answer, route, qtype, shaped) =
                    self.answer_message(snapshot, bytes, message, src, protocol, out);
                let answer = match answer {
                    Answer::Reply(mut reply) => {
                        tsig::sign_all(&verified, std::slice::from_mut(&mut reply));
                        Answer::Reply(reply)
                    }
                    other => other,
                };
                (answer, route, qtype, shaped)
            }
            Ok(None) => self.answer_message(snapshot, bytes, message, src, protocol, out),
            Err(refusal) => {
                self.tsig_stats.count(Some(refusal));
                let limit = Limit::new(message.edns.as_ref(), protocol);
                let mut reply = error_reply(message, ResponseCode::NotAuth, limit);
                tsig::append_error(&mut reply, message, refusal);
                let route = Route::Error(ResponseCode::NotAuth);
                (Answer::Reply(reply), route, qtype, Shaped::default())
            }
        }
    }
}
