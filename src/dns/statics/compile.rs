//! A zone file turned into [`Compiled`] answers: for every name, the answer to each type it
//! holds and to every other type, worked out as Knot works them out at query time.

use std::collections::{BTreeMap, HashMap, HashSet};

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use super::{Compiled, Node, Prepared, StaticZone};
use crate::dns::zones::ZoneFile;
use crate::wire::{rr_tail, wire_name, wire_name_cased, zone_offset, WireName, QNAME_POINTER};

/// The longest CNAME chain followed inside a zone (Knot stops at loops; so do we, and at this).
const MAX_CHAIN: usize = 16;

/// One name's records by type, in canonical order (as Knot sends them), every record of a set
/// at the set's TTL.
type Sets = BTreeMap<u16, Vec<Record>>;

/// Compiles `file` (hickory's parser refuses DNSSEC records in zone files, so there are none:
/// the zone is unsigned).
pub(super) fn zone(file: &ZoneFile) -> StaticZone {
    let origin = wire_name(&file.origin);
    let mut names: HashMap<WireName, Sets> = HashMap::new();
    for (key, set) in &file.records {
        let mut records: Vec<Record> = set.records_without_rrsigs().cloned().collect();
        for record in &mut records {
            record.ttl = set.ttl();
        }
        // Canonical order (RFC 4034 §6.3): by RDATA, after type, class, TTL and RDLENGTH.
        records.sort_by_cached_key(|r| rr_tail(r).split_off(10));
        let owner = wire_name(&Name::from(&key.name));
        names
            .entry(owner)
            .or_default()
            .insert(key.record_type.into(), records);
    }
    let compiled = Zone::new(origin.clone(), names).compile();
    StaticZone { origin, compiled }
}

/// The file's names while compiling.
struct Zone {
    origin: WireName,
    /// Every owner and every empty non-terminal between an owner and the origin.
    names: HashMap<WireName, Sets>,
}

/// Where a name leads, as the query path will find it.
enum Found<'a> {
    /// The name itself, or the wildcard that stands for it.
    Node(&'a Sets),
    /// A name at or below this delegation point.
    Referral(&'a [u8]),
    /// No such name.
    NxDomain,
    /// Not in this zone.
    Outside,
}

/// How a CNAME chain ends.
enum ChainEnd<'a> {
    /// At a node with no CNAME, which `owner` names (as the last CNAME wrote it).
    Node(&'a Sets, Vec<u8>),
    Referral(&'a [u8]),
    NxDomain,
    /// Outside the zone, or back at a name already in the chain.
    Nothing,
}

/// The parent of a wire name (`None` for the root).
fn parent(name: &[u8]) -> Option<&[u8]> {
    let len = *name.first()? as usize;
    (len != 0).then(|| &name[1 + len..])
}

impl Zone {
    fn new(origin: WireName, mut names: HashMap<WireName, Sets>) -> Self {
        let owners: Vec<WireName> = names.keys().cloned().collect();
        for owner in owners {
            let mut name: &[u8] = &owner;
            while name.len() > origin.len() {
                let Some(up) = parent(name) else { break };
                names.entry(up.into()).or_default();
                name = up;
            }
        }
        Self { origin, names }
    }

    /// The topmost delegation point at or above `name` (below the origin).
    fn cut_of(&self, name: &[u8]) -> Option<&[u8]> {
        let mut cut = None;
        let mut at = name;
        while at.len() > self.origin.len() {
            if let Some((owner, sets)) = self.names.get_key_value(at) {
                if sets.contains_key(&RecordType::NS.into()) {
                    cut = Some(&**owner);
                }
            }
            at = parent(at)?;
        }
        cut
    }

    /// What the query path finds for `name` (lowercase).
    fn find(&self, name: &[u8]) -> Found<'_> {
        if zone_offset(name, &self.origin).is_none() {
            return Found::Outside;
        }
        if let Some(cut) = self.cut_of(name) {
            return Found::Referral(cut);
        }
        if let Some(sets) = self.names.get(name) {
            return Found::Node(sets);
        }
        let mut at = name;
        while let Some(up) = parent(at) {
            if let Some(_encloser) = self.names.get(up) {
                let mut wildcard = vec![1, b'*'];
                wildcard.extend_from_slice(up);
                return match self.names.get(&*wildcard) {
                    Some(sets) => Found::Node(sets),
                    None => Found::NxDomain,
                };
            }
            at = up;
        }
        Found::NxDomain
    }

    fn compile(&self) -> Compiled {
        let mut index = HashMap::with_capacity_and_hasher(self.names.len(), Default::default());
        let mut nodes = Vec::with_capacity(self.names.len());
        for (name, sets) in &self.names {
            index.insert(name.clone(), nodes.len() as u32);
            nodes.push(self.node(name, sets));
        }
        for (name, &at) in &index {
            let mut wildcard = vec![1, b'*'];
            wildcard.extend_from_slice(name);
            nodes[at as usize].wildcard = index.get(&*wildcard).copied();
        }
        let soa = self
            .names
            .get(&self.origin)
            .and_then(|sets| sets.get(&RecordType::SOA.into()))
            .and_then(|set| set.first());
        let negative_soa = soa.map(negative_soa).unwrap_or_default();
        Compiled {
            index,
            nodes,
            negative_soa,
            nxdomain: Prepared {
                rcode: ResponseCode::NXDomain.low(),
                authoritative: true,
                soa: true,
                ..Prepared::default()
            },
        }
    }

    /// The answers of one name.
    fn node(&self, name: &[u8], sets: &Sets) -> Node {
        if let Some(cut) = self.cut_of(name) {
            let referral = self.referral(cut, Prepared::default());
            let mut by_type = Vec::new();
            if cut == name {
                // DS belongs to the parent side of the cut (RFC 4035 §3.1.4.1), and a zone
                // file holds none.
                by_type.push((RecordType::DS.into(), nodata(Prepared::default())));
            }
            return Node {
                by_type: by_type.into(),
                otherwise: referral,
                delegated: true,
                ..Node::default()
            };
        }
        let cname = u16::from(RecordType::CNAME);
        if let Some(links) = sets.get(&cname) {
            return self.cname_node(name, links);
        }
        let by_type: Vec<(u16, Prepared)> = sets
            .iter()
            .map(|(&rtype, set)| {
                let answer = self.positive(Prepared::default(), &QNAME_POINTER, set);
                (rtype, answer)
            })
            .collect();
        Node {
            any: (!by_type.is_empty()).then_some(0),
            by_type: by_type.into(),
            otherwise: nodata(Prepared::default()),
            ..Node::default()
        }
    }

    /// The answers of a name holding a CNAME: the chain inside the zone, then what its end
    /// holds of each type.
    fn cname_node(&self, name: &[u8], first: &[Record]) -> Node {
        let cname = u16::from(RecordType::CNAME);
        let alone = self.positive(Prepared::default(), &QNAME_POINTER, first);
        let mut chain = Prepared {
            authoritative: true,
            ..Prepared::default()
        };
        let end = self.chain(name, first, &mut chain);
        let mut by_type = vec![(cname, alone)];
        let otherwise = match end {
            ChainEnd::Node(sets, owner) => {
                for (&rtype, set) in sets {
                    by_type.push((rtype, self.positive(chain.clone(), &owner, set)));
                }
                nodata(chain)
            }
            ChainEnd::Referral(cut) => self.referral(cut, chain),
            ChainEnd::NxDomain => Prepared {
                rcode: ResponseCode::NXDomain.low(),
                soa: true,
                ..chain
            },
            ChainEnd::Nothing => chain,
        };
        by_type.sort_by_key(|(rtype, _)| *rtype);
        let any = by_type.iter().position(|(rtype, _)| *rtype == cname);
        Node {
            by_type: by_type.into(),
            otherwise,
            any: any.map(|at| at as u16),
            ..Node::default()
        }
    }

    /// Writes the CNAME records from `name` on into `chain`'s answers and says where the
    /// chain ends.
    fn chain<'a>(&'a self, name: &[u8], first: &[Record], chain: &mut Prepared) -> ChainEnd<'a> {
        let mut seen: HashSet<Vec<u8>> = HashSet::from([name.to_vec()]);
        let mut owner = QNAME_POINTER.to_vec();
        let mut links = first.to_vec();
        loop {
            let Some(RData::CNAME(target)) = links.first().map(|r| &r.data) else {
                return ChainEnd::Nothing;
            };
            let target = target.0.clone();
            append(chain, Section::Answer, &owner, &links);
            let lower = wire_name(&target);
            if seen.len() >= MAX_CHAIN || !seen.insert(lower.to_vec()) {
                return ChainEnd::Nothing;
            }
            owner = wire_name_cased(&target);
            let sets = match self.find(&lower) {
                Found::Node(sets) => sets,
                Found::Referral(cut) => return ChainEnd::Referral(cut),
                Found::NxDomain => return ChainEnd::NxDomain,
                Found::Outside => return ChainEnd::Nothing,
            };
            match sets.get(&RecordType::CNAME.into()) {
                Some(next) => links = next.clone(),
                None => return ChainEnd::Node(sets, owner),
            }
        }
    }

    /// `base` with `set` (owned by `owner`) added to its answers, and the addresses of the
    /// names it points at to its additional section, AA set.
    fn positive(&self, base: Prepared, owner: &[u8], set: &[Record]) -> Prepared {
        let mut answer = Prepared {
            authoritative: true,
            ..base
        };
        append(&mut answer, Section::Answer, owner, set);
        self.addresses_of_targets(&mut answer, set);
        answer
    }

    /// `base` with the referral to `cut`: its NS set in the authority section, the glue in
    /// the additional.
    fn referral(&self, cut: &[u8], base: Prepared) -> Prepared {
        let mut answer = base;
        let Some(ns) = self
            .names
            .get(cut)
            .and_then(|s| s.get(&RecordType::NS.into()))
        else {
            return answer;
        };
        let owner = ns
            .first()
            .map(|r| wire_name_cased(&r.name))
            .unwrap_or_default();
        append(&mut answer, Section::Authority, &owner, ns);
        self.addresses_of_targets(&mut answer, ns);
        answer
    }

    /// The A and AAAA records of the names that NS, MX and SRV records of `set` point at,
    /// where the zone holds them (glue included), into the additional section.
    fn addresses_of_targets(&self, answer: &mut Prepared, set: &[Record]) {
        for record in set {
            let target = match &record.data {
                RData::NS(ns) => &ns.0,
                RData::MX(mx) => &mx.exchange,
                RData::SRV(srv) => &srv.target,
                _ => continue,
            };
            let Some(sets) = self.names.get(&wire_name(target)) else {
                continue;
            };
            let owner = wire_name_cased(target);
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(addresses) = sets.get(&rtype.into()) {
                    append(answer, Section::Additional, &owner, addresses);
                }
            }
        }
    }
}

/// `base` as a NODATA answer: AA, the SOA in the authority section.
fn nodata(base: Prepared) -> Prepared {
    Prepared {
        authoritative: true,
        soa: true,
        ..base
    }
}

/// The SOA of negative answers after its owner name, at the smaller of its TTL and MINIMUM.
fn negative_soa(soa: &Record) -> Box<[u8]> {
    let mut record = soa.clone();
    if let RData::SOA(data) = &soa.data {
        record.ttl = record.ttl.min(data.minimum);
    }
    rr_tail(&record).into_boxed_slice()
}

enum Section {
    Answer,
    Authority,
    Additional,
}

/// Appends `records`, each owned by `owner` (wire form: a name, or the question pointer).
fn append(answer: &mut Prepared, section: Section, owner: &[u8], records: &[Record]) {
    let (bytes, count) = match section {
        Section::Answer => (&mut answer.answers, &mut answer.answer_count),
        Section::Authority => (&mut answer.authority, &mut answer.authority_count),
        Section::Additional => (&mut answer.additional, &mut answer.additional_count),
    };
    let mut out = std::mem::take(bytes).into_vec();
    for record in records {
        out.extend_from_slice(owner);
        out.extend_from_slice(&rr_tail(record));
        *count = count.saturating_add(1);
    }
    *bytes = out.into_boxed_slice();
}
