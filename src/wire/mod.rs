//! DNS wire format for the hot path (pure): lowercase name keys, pre-encoded RRsets, a strict
//! query parser and a reply writer. Answers are encoded once, when the table changes; a query
//! then costs a parse, one hash lookup and a few copies.
//!
//! Answer records are stored with the owner `0xC00C`, a compression pointer to the question
//! name (which always starts at offset 12), so one encoding serves every spelling of the name.

mod name;
pub mod pick;
mod query;
mod reply;
mod rrset;
pub mod spread;

pub use name::{name_from_wire, reverse_name, wire_name, wire_name_cased, zone_offset, WireName};
pub use query::{
    parse_query, question_bytes, ClientSubnet, QueryEdns, WireQuery, EDNS_FLAG_CO, OPTION_ECS,
};
pub use reply::{ecs_len, set_edns_flag, write_reply, Near, ReplyBody};
pub use rrset::{rr_tail, RRset, RRsetRef};

/// Largest wire-format name (RFC 1035 §3.1).
pub const MAX_NAME_WIRE: usize = 255;
/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;
/// Compression pointer to offset 12, where the question name starts: the owner of every
/// stored answer record.
pub const QNAME_POINTER: [u8; 2] = [0xc0, 0x0c];
/// Header byte 2: QR, set in responses.
pub const FLAG_QR: u8 = 0x80;
/// Header byte 2: the opcode's four bits.
pub const OPCODE_BITS: u8 = 0x78;
/// Header byte 2: AA, authoritative answer.
pub const FLAG_AA: u8 = 0x04;
/// Header byte 2: TC, truncated.
pub const FLAG_TC: u8 = 0x02;
/// Header byte 2: RD, recursion desired (copied into replies).
pub const FLAG_RD: u8 = 0x01;
/// Header byte 3: CD, checking disabled (copied into replies).
pub const FLAG_CD: u8 = 0x10;
/// Header byte 3: the RCODE's low four bits.
pub const RCODE_BITS: u8 = 0x0f;
/// The two high bits of a length byte that mark a compression pointer (or another extended
/// label type) instead of a label.
pub const POINTER_BITS: u8 = 0xc0;

/// Size of an OPT record without options (RFC 6891 §6.1.2): root owner, type, class (the
/// payload size), TTL (extended RCODE, version, flags), RDLENGTH.
pub const OPT_LEN: usize = 11;
