//! TSIG (RFC 8945): shared-key signatures of zone transfers, NOTIFY and the queries secondaries
//! make. Keys come from `--tsig-key`: a file in BIND's format (`key "name" { algorithm
//! hmac-sha256; secret "…"; };`, as `tsig-keygen` writes it, several per file) or `[ALG:]NAME:SECRET`
//! (as `dig -y` takes it). A signed request is verified (key, MAC, time) before it is answered,
//! and its reply is signed — every message of a transfer, each chained to the one before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};
use thiserror::Error;

use crate::wire::{wire_name, HEADER_LEN};

/// Seconds of clock difference a signature may have (RFC 8945 §10 recommends 300).
pub const FUDGE: u16 = 300;
/// TSIG as a type number.
const TYPE_TSIG: u16 = 250;
/// Class ANY.
const CLASS_ANY: u16 = 255;

/// RFC 8945 error codes, in the TSIG record of an error reply.
const BADSIG: u16 = 16;
const BADKEY: u16 = 17;
const BADTIME: u16 = 18;

/// A bad `--tsig-key`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Neither a readable file nor `[ALG:]NAME:SECRET`.
    #[error("{0:?} is neither a key file nor [ALG:]NAME:SECRET")]
    Form(String),
    /// The file does not hold a key in BIND's format.
    #[error("{file}: {why}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// An algorithm we cannot compute.
    #[error("key {name}: algorithm {algorithm:?} is not supported (hmac-sha256, hmac-sha384, hmac-sha512)")]
    Algorithm {
        /// The key's name.
        name: String,
        /// The algorithm named.
        algorithm: String,
    },
    /// The secret is not base64.
    #[error("key {0}: the secret is not base64")]
    Secret(String),
    /// A name that is no domain name.
    #[error("key name {0:?} is not a domain name")]
    Name(String),
}

/// One key.
#[derive(Clone)]
pub struct Key {
    /// Its name, lowercase wire form (as the MAC covers it).
    pub wire: Vec<u8>,
    signer: TSigner,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.signer.signer_name())
    }
}

impl Key {
    /// A key `name` with `algorithm` (BIND's names) and base64 `secret`.
    pub fn new(name: &str, algorithm: &str, secret: &str) -> Result<Self, KeyError> {
        let algorithm_name = algorithm.trim().to_ascii_lowercase();
        let algorithm = match algorithm_name.as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            _ => {
                return Err(KeyError::Algorithm {
                    name: name.into(),
                    algorithm: algorithm_name,
                })
            }
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|_| KeyError::Secret(name.into()))?;
        let mut owner = Name::from_ascii(name.trim()).map_err(|_| KeyError::Name(name.into()))?;
        owner.set_fqdn(true);
        let owner = owner.to_lowercase();
        let signer = TSigner::new(secret, algorithm, owner.clone(), FUDGE)
            .map_err(|_| KeyError::Secret(name.into()))?;
        Ok(Self {
            wire: wire_name(&owner).into_vec(),
            signer,
        })
    }

    /// Its name.
    pub fn name(&self) -> &Name {
        self.signer.signer_name()
    }
}

/// Parses one `--tsig-key`: a key file, or `[ALG:]NAME:SECRET` (hmac-sha256 when no ALG).
pub fn parse_key_arg(arg: &str) -> Result<Vec<Key>, KeyError> {
    let path = std::path::Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::File {
            file: arg.into(),
            why: e.to_string(),
        })?;
        return parse_bind_keys(&text).map_err(|why| match why {
            KeyError::File { why, .. } => KeyError::File {
                file: arg.into(),
                why,
            },
            other => other,
        });
    }
    let parts: Vec<&str> = arg.splitn(3, ':').collect();
    match parts.as_slice() {
        [name, secret] => Ok(vec![Key::new(name, "hmac-sha256", secret)?]),
        [algorithm, name, secret] => Ok(vec![Key::new(name, algorithm, secret)?]),
        _ => Err(KeyError::Form(arg.into())),
    }
}

/// The keys of a file in BIND's format: `key "name" { algorithm A; secret "S"; };`, any
/// number, with `#`, `//` and `/* */` comments.
pub fn parse_bind_keys(text: &str) -> Result<Vec<Key>, KeyError> {
    let mut clean = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else if rest.starts_with('#') || rest.starts_with("//") {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                clean.push(c);
            }
            rest = chars.as_str();
        }
    }
    let bad = |why: &str| KeyError::File {
        file: String::new(),
        why: why.into(),
    };
    let mut keys = Vec::new();
    let mut rest = clean.as_str();
    while let Some(at) = rest.find("key") {
        let after = &rest[at + 3..];
        let (name, body) = after
            .split_once('{')
            .ok_or_else(|| bad("`key \"name\" {` expected"))?;
        let (body, next) = body
            .split_once('}')
            .ok_or_else(|| bad("a key's `}` is missing"))?;
        let name = name.trim().trim_matches('"');
        let mut algorithm = None;
        let mut secret = None;
        for statement in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            match statement.split_once(char::is_whitespace) {
                Some(("algorithm", value)) => algorithm = Some(value.trim().trim_matches('"')),
                Some(("secret", value)) => secret = Some(value.trim().trim_matches('"')),
                _ => {}
            }
        }
        let algorithm = algorithm.ok_or_else(|| bad(&format!("key {name}: no algorithm")))?;
        let secret = secret.ok_or_else(|| bad(&format!("key {name}: no secret")))?;
        keys.push(Key::new(name, algorithm, secret)?);
        rest = next;
    }
    if keys.is_empty() {
        return Err(bad("no `key \"name\" { … };` in it"));
    }
    Ok(keys)
}

/// Why a signed request was not accepted; counted, never logged per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A key we do not have.
    BadKey,
    /// The MAC does not verify.
    BadSig,
    /// Signed too long ago or too far ahead.
    BadTime,
}

/// TSIG failures by kind, for `/metrics`.
#[derive(Debug, Default)]
pub struct TsigStats {
    /// Per [`Refusal`], then unsigned requests refused because a key was required.
    pub refused: [AtomicU64; 4],
}

/// The `reason` labels of [`TsigStats::refused`].
pub const REFUSALS: [&str; 4] = ["badkey", "badsig", "badtime", "unsigned"];

impl crate::metrics::Report for TsigStats {
    fn report(
        &self,
        encoder: &mut prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::MetricType;
        let mut family = encoder.encode_descriptor(
            "etcd_dns_tsig_refused",
            "Requests refused for their TSIG: an unknown key (badkey), a MAC that does not verify (badsig), a time outside the fudge (badtime), or a transfer unsigned where --allow-transfer names keys (unsigned)",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in REFUSALS.iter().zip(&self.refused) {
            ConstCounter::new(value.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("reason", *reason)])?)?;
        }
        Ok(())
    }
}

impl TsigStats {
    /// Counts a refusal.
    pub fn count(&self, refusal: Option<Refusal>) {
        let slot = match refusal {
            Some(Refusal::BadKey) => 0,
            Some(Refusal::BadSig) => 1,
            Some(Refusal::BadTime) => 2,
            None => 3,
        };
        self.refused[slot].fetch_add(1, Ordering::Relaxed);
    }
}

/// A verified request: the key, and the request's MAC that the reply's covers.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The key it was signed with.
    pub key: Key,
    /// Its MAC.
    pub mac: Vec<u8>,
}

/// The current time in seconds since the epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks the TSIG of `request` (parsed as `message`) against `keys`: `Ok(None)` when it is not
/// signed, `Ok(Some(_))` when it verifies.
pub fn verify(keys: &[Key], bytes: &[u8], message: &Message) -> Result<Option<Verified>, Refusal> {
    let Some(signature) = message.signature() else {
        return Ok(None);
    };
    let name = signature.name.to_lowercase();
    let key = keys
        .iter()
        .find(|k| *k.name() == name && k.signer.algorithm() == &signature.data.algorithm)
        .ok_or(Refusal::BadKey)?;
    let (mac, _, valid) = key
        .signer
        .verify_message_byte(bytes, None, true)
        .map_err(|_| Refusal::BadSig)?;
    if !valid.contains(&now()) && valid.end != now() {
        return Err(Refusal::BadTime);
    }
    Ok(Some(Verified {
        key: key.clone(),
        mac,
    }))
}

/// Signs the messages of one reply to a request `verified` — the first over the request's MAC
/// and every TSIG variable, each later one over the MAC before it and the timers (RFC 8945
/// §5.3.1) — appending a TSIG record to each.
pub fn sign_all(verified: &Verified, messages: &mut [Vec<u8>]) {
    let time = now();
    let mut previous = verified.mac.clone();
    for (i, message) in messages.iter_mut().enumerate() {
        previous = sign(&verified.key, message, Some(&previous), i == 0, time, 0);
    }
}

/// An unsigned TSIG record telling the client why its request was refused (BADKEY, BADSIG:
/// RFC 8945 §5.3.2), appended to `reply`.
pub fn append_error(reply: &mut Vec<u8>, message: &Message, refusal: Refusal) {
    let Some(signature) = message.signature() else {
        return;
    };
    let error = match refusal {
        Refusal::BadKey => BADKEY,
        Refusal::BadSig => BADSIG,
        Refusal::BadTime => BADTIME,
    };
    let owner = wire_name(&signature.name.to_lowercase()).into_vec();
    let algorithm = wire_name(&signature.data.algorithm.to_name()).into_vec();
    let id = reply
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    append_record(reply, &owner, &algorithm, now(), &[], id, error);
}

/// Signs `message` with `key` over `previous` (the request's MAC, or the last message's; none
/// for a request): appends the TSIG record and returns its MAC.
fn sign(
    key: &Key,
    message: &mut Vec<u8>,
    previous: Option<&[u8]>,
    first: bool,
    time: u64,
    error: u16,
) -> Vec<u8> {
    let algorithm = wire_name(&key.signer.algorithm().to_name()).into_vec();
    let mut tbs = Vec::with_capacity(message.len() + 128);
    if let Some(previous) = previous {
        tbs.extend_from_slice(&(previous.len() as u16).to_be_bytes());
        tbs.extend_from_slice(previous);
    }
    tbs.extend_from_slice(message);
    if first {
        tbs.extend_from_slice(&key.wire);
        tbs.extend_from_slice(&CLASS_ANY.to_be_bytes());
        tbs.extend_from_slice(&0u32.to_be_bytes());
        tbs.extend_from_slice(&algorithm);
        tbs.extend_from_slice(&time.to_be_bytes()[2..]);
        tbs.extend_from_slice(&FUDGE.to_be_bytes());
        tbs.extend_from_slice(&error.to_be_bytes());
        tbs.extend_from_slice(&0u16.to_be_bytes());
    } else {
        tbs.extend_from_slice(&time.to_be_bytes()[2..]);
        tbs.extend_from_slice(&FUDGE.to_be_bytes());
    }
    let mac = key.signer.sign(&tbs).unwrap_or_default();
    let id = message
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    append_record(message, &key.wire, &algorithm, time, &mac, id, error);
    mac
}

/// Appends a TSIG record and counts it in ARCOUNT.
fn append_record(
    message: &mut Vec<u8>,
    owner: &[u8],
    algorithm: &[u8],
    time: u64,
    mac: &[u8],
    id: u16,
    error: u16,
) {
    if message.len() < HEADER_LEN {
        return;
    }
    let mut rdata = Vec::with_capacity(algorithm.len() + 16 + mac.len());
    rdata.extend_from_slice(algorithm);
    rdata.extend_from_slice(&time.to_be_bytes()[2..]);
    rdata.extend_from_slice(&FUDGE.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&id.to_be_bytes());
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    message.extend_from_slice(owner);
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend_from_slice(&rdata);
    let count = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&count.to_be_bytes());
}

/// Signs a NOTIFY (a request: no MAC before it).
pub fn sign_request(key: &Key, message: &mut Vec<u8>) {
    sign(key, message, None, true, now(), 0);
}

#[cfg(test)]
mod tests;
