//! DNS wire format for the hot path (pure): lowercase name keys, pre-encoded RRsets, a strict
//! query parser and a reply writer. Answers are encoded once, when the table changes; a query
//! then costs a parse, one hash lookup and a few copies.
//!
//! Answer records are stored with the owner `0xC00C`, a compression pointer to the question
//! name (which always starts at offset 12), so one encoding serves every spelling of the name.

mod name;
mod query;
mod reply;
mod rrset;

pub use name::{key_name, name_key, name_key_cased, reverse_key, zone_offset, NameKey};
pub use query::{parse_query, question_bytes, QueryEdns, WireQuery};
pub use reply::{write_reply, ReplyBody};
pub use rrset::{rr_tail, RRset, RRsetRef};

/// Largest wire-format name (RFC 1035 §3.1).
pub const MAX_NAME_WIRE: usize = 255;
/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;
/// Compression pointer to offset 12, where the question name starts: the owner of every
/// stored answer record.
pub const QNAME_POINTER: [u8; 2] = [0xc0, 0x0c];
/// Size of an OPT record without options (RFC 6891 §6.1.2): root owner, type, class (the
/// payload size), TTL (extended RCODE, version, flags), RDLENGTH.
pub const OPT_LEN: usize = 11;
