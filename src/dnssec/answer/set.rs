//! A signed answer from one of the table's sets: whole (its signatures cached per version of
//! the name's node), or the records chosen from a large or weighted set (signed as chosen).

use super::{Asked, Extra, Shape};
use crate::dns::live::{self, Body};
use crate::dnssec::cache::{SigKey, Version};
use crate::dnssec::sign::{self, name_owned, pointer_owned, SetToSign};
use crate::dnssec::{Dnssec, ZoneSigner};
use crate::table::Node;
use crate::wire::pick::Picks;
use crate::wire::{RRsetRef, ReplyBody, QNAME_POINTER};
use std::sync::atomic::Ordering;

/// Length of the RRSIG record after its owner at the start of `tail`.
fn tail_len(tail: &[u8]) -> usize {
    tail.get(8..10)
        .map_or(tail.len(), |b| {
            10 + usize::from(u16::from_be_bytes([b[0], b[1]]))
        })
        .min(tail.len())
}

impl Dnssec {
    /// `set` answered as [`live::fill`] and [`Body::finish`] answer it, with its RRSIG and
    /// its additional records' RRSIGs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer_set<'b>(
        &self,
        signer: &ZoneSigner,
        name: &[u8],
        node: &Node,
        set: RRsetRef<'b>,
        variant: u16,
        asked: &Asked<'_>,
        picks: &'b mut Picks,
        body: &mut ReplyBody<'b>,
        extra: &mut Extra,
        shape: &mut Shape,
    ) -> Option<()> {
        let (rotate, room, now) = (asked.rotate, asked.room, asked.now);
        let near = body.near;
        *body = match live::fill(std::mem::take(body), set, rotate, room) {
            Body::Ready(body) => body,
            pick => pick.finish(rotate, room, picks),
        };
        body.near = near;
        shape.cut = body.cut;
        if body.answers.2 == 0 {
            return Some(());
        }
        // Every additional record of the set (a weighted pick may reorder them, never change
        // them when it keeps every answer): the whole set's RRSIGs hold.
        let all_extra =
            body.additional.1 == set.extra_count && body.additional.0.len() == set.extra.len();
        let whole = body.answers.2 == set.count && all_extra;
        // The records signed: the whole set, or those chosen (a rotating window of a large
        // set, a weighted pick), each choice cached for this version of the node.
        let (rrs, additional, subset) = if whole {
            ([set.rrs, &[][..]], set.extra, 0)
        } else {
            let chosen = [body.answers.0, body.answers.1];
            let subset = self
                .cache
                .subset(&[chosen[0], chosen[1], body.additional.0]);
            (chosen, body.additional.0, subset)
        };
        let key = SigKey {
            name,
            rtype: set.rtype,
            variant,
            subset,
        };
        let start = extra.bytes.len();
        extra.bytes.extend_from_slice(&QNAME_POINTER);
        let hit = self.cached(
            key,
            Version::Node(node.clone()),
            now,
            &mut extra.bytes,
            |out| {
                let records = || rrs.into_iter().flat_map(pointer_owned);
                let ttl = records().next().map_or(0, |(ttl, _)| ttl);
                let to_sign = SetToSign {
                    owner: name,
                    rtype: set.rtype,
                    ttl,
                    rdatas: records().map(|(_, d)| d).collect(),
                };
                self.sign(signer, &to_sign, now, out)?;
                self.extra_rrsigs(signer, additional, now, out)?;
                Some(sign::validity(now, ttl).2)
            },
        )?;
        let answer_end = start + 2 + tail_len(&extra.bytes[start + 2..]);
        extra.answer = (answer_end - start, 1);
        let signatures = &extra.bytes[answer_end..];
        extra.additional = (signatures.len(), name_owned(signatures).count() as u16);
        if hit {
            self.stats.cached.fetch_add(1, Ordering::Relaxed);
        }
        Some(())
    }
}
