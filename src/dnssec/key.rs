//! The zone's signing key: BIND's key files (`K<zone>+013+<tag>.private` and its `.key`) read
//! and written, the DNSKEY it publishes and the DS its parent holds.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hickory_proto::rr::Name;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::wire::{wire_name, WireName};

/// DNSSEC algorithm 13, ECDSA P-256 with SHA-256 (RFC 6605): the only one read.
pub const ALGORITHM: u8 = 13;
/// DNSKEY flags of a key that signs the zone and is the secure entry point (KSK and ZSK in
/// one, as an online signer uses it).
pub const FLAGS_CSK: u16 = 257;
/// DNSKEY protocol field (always 3).
const PROTOCOL: u8 = 3;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file cannot be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// A file does not say what a key file must.
    #[error("{path}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

fn format_error(path: &Path, why: impl Into<String>) -> KeyError {
    KeyError::Format {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// One zone's key: the pair that signs and what the zone publishes of it.
pub struct ZoneKey {
    /// The zone it signs (as the `.key` file names it).
    pub zone: Name,
    /// The zone's lowercase wire name.
    pub zone_wire: WireName,
    /// DNSKEY flags (256: zone key; 257: also the secure entry point).
    pub flags: u16,
    /// The public key as DNSKEY carries it: X ‖ Y, 64 bytes.
    pub public: Vec<u8>,
    /// The key tag (RFC 4034 Appendix B).
    pub tag: u16,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ZoneKey({} tag {} flags {})",
            self.zone, self.tag, self.flags
        )
    }
}

/// The `.private` and `.key` files of `path`, which may name either or neither (the common
/// stem `K<zone>+013+<tag>`).
pub fn key_files(path: &Path) -> (PathBuf, PathBuf) {
    let text = path.to_string_lossy();
    let stem = text
        .strip_suffix(".private")
        .or_else(|| text.strip_suffix(".key"))
        .unwrap_or(&text);
    (
        PathBuf::from(format!("{stem}.private")),
        PathBuf::from(format!("{stem}.key")),
    )
}

impl ZoneKey {
    /// Reads the key `path` names: BIND's `.private` file (`Private-key-format: v1.3`,
    /// `Algorithm: 13`, `PrivateKey:` the scalar in base64) and the `.key` file beside it (the
    /// DNSKEY record: zone, flags and public key). The pair is checked to belong together.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let (private_path, public_path) = key_files(path);
        let private = read(&private_path)?;
        let field = |name: &str| {
            private.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let algorithm = field("Algorithm").ok_or_else(|| {
            format_error(
                &private_path,
                "no Algorithm: line (not a BIND private key file)",
            )
        })?;
        if algorithm.split_whitespace().next() != Some("13") {
            return Err(format_error(
                &private_path,
                format!("algorithm {algorithm}: only 13 (ECDSAP256SHA256) is supported; make one with dnssec-keygen -a ECDSAP256SHA256 or etcd-dns dnssec keygen"),
            ));
        }
        let scalar = field("PrivateKey")
            .ok_or_else(|| format_error(&private_path, "no PrivateKey: line"))?;
        let scalar = STANDARD
            .decode(scalar.as_bytes())
            .map_err(|e| format_error(&private_path, format!("PrivateKey is not base64: {e}")))?;
        if scalar.len() != 32 {
            return Err(format_error(
                &private_path,
                format!(
                    "PrivateKey holds {} bytes, not the 32 of a P-256 key",
                    scalar.len()
                ),
            ));
        }
        let (zone, flags, public) = read_dnskey(&public_path)?;
        Self::new(zone, flags, &scalar, public).map_err(|why| format_error(&private_path, why))
    }

    /// The key of `zone` from its private scalar and public point (X ‖ Y).
    fn new(zone: Name, flags: u16, scalar: &[u8], public: Vec<u8>) -> Result<Self, String> {
        let mut point = Vec::with_capacity(65);
        point.push(4); // uncompressed
        point.extend_from_slice(&public);
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            &point,
            &rng,
        )
        .map_err(|e| {
            format!("the private key does not match the public key of its .key file ({e})")
        })?;
        let mut zone = zone.to_lowercase();
        zone.set_fqdn(true);
        let mut key = Self {
            zone_wire: wire_name(&zone),
            zone,
            flags,
            public,
            tag: 0,
            pair,
            rng,
        };
        key.tag = key_tag(&key.dnskey_rdata());
        Ok(key)
    }

    /// A new key for `zone` (flags 257), written to `dir` as BIND writes it; the path of its
    /// `.private` file.
    pub fn generate(zone: &Name, dir: &Path) -> Result<(Self, PathBuf), KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| format_error(dir, "cannot generate a key (no randomness?)"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| format_error(dir, format!("generated key rejected: {e}")))?;
        // ring's P-256 PKCS#8 document: a fixed 36-byte header, then the 32-byte scalar.
        let scalar = pkcs8
            .as_ref()
            .get(36..68)
            .ok_or_else(|| format_error(dir, "unexpected PKCS#8 layout"))?
            .to_vec();
        let public = pair.public_key().as_ref()[1..].to_vec();
        let key = Self::new(zone.clone(), FLAGS_CSK, &scalar, public)
            .map_err(|why| format_error(dir, why))?;
        let stem = dir.join(format!("K{}+013+{:05}", key.zone, key.tag));
        let (private_path, public_path) = key_files(&stem);
        let private = format!(
            "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: {}\n",
            STANDARD.encode(&scalar)
        );
        let public = format!(
            "; This is a key-signing key, keyid {}, for {}\n{} IN DNSKEY {}\n",
            key.tag,
            key.zone,
            key.zone,
            key.dnskey_text()
        );
        write_file(&private_path, &private, 0o600)?;
        if let Err(error) = write_file(&public_path, &public, 0o644) {
            // Half a key is no key: leave nothing behind.
            let _ = std::fs::remove_file(&private_path);
            return Err(error);
        }
        Ok((key, private_path))
    }

    /// The DNSKEY RDATA: flags, protocol 3, algorithm 13, public key.
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        let mut rdata = Vec::with_capacity(4 + self.public.len());
        rdata.extend_from_slice(&self.flags.to_be_bytes());
        rdata.extend_from_slice(&[PROTOCOL, ALGORITHM]);
        rdata.extend_from_slice(&self.public);
        rdata
    }

    /// The DNSKEY RDATA in presentation form (`257 3 13 base64`).
    pub fn dnskey_text(&self) -> String {
        format!(
            "{} {PROTOCOL} {ALGORITHM} {}",
            self.flags,
            STANDARD.encode(&self.public)
        )
    }

    /// The DS record of this key for the parent zone, digest type 2 (SHA-256), in
    /// presentation form.
    pub fn ds_text(&self) -> String {
        let mut data = self.zone_wire.to_vec();
        data.extend_from_slice(&self.dnskey_rdata());
        let digest = ring::digest::digest(&ring::digest::SHA256, &data);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        format!("{} IN DS {} {ALGORITHM} 2 {hex}", self.zone, self.tag)
    }

    /// Signs `data`: the 64-byte r ‖ s that RRSIG carries (RFC 6605 §4).
    pub fn sign(&self, data: &[u8]) -> Option<ring::signature::Signature> {
        self.pair.sign(&self.rng, data).ok()
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

/// The zone, flags and public key of the DNSKEY record in BIND's `.key` file: comments (`;`)
/// skipped, an optional TTL and class, the base64 key possibly split by spaces.
fn read_dnskey(path: &Path) -> Result<(Name, u16, Vec<u8>), KeyError> {
    let text = read(path)?;
    let line = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or_default().trim())
        .find(|l| !l.is_empty())
        .ok_or_else(|| format_error(path, "no DNSKEY record"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| f.eq_ignore_ascii_case("DNSKEY"))
        .filter(|at| *at >= 1)
        .ok_or_else(|| format_error(path, format!("not a DNSKEY record with its owner: {line}")))?;
    let zone = Name::from_ascii(fields[0])
        .map_err(|e| format_error(path, format!("bad owner name {}: {e}", fields[0])))?;
    let rest = &fields[at + 1..];
    let (Some(flags), Some(protocol), Some(algorithm)) = (rest.first(), rest.get(1), rest.get(2))
    else {
        return Err(format_error(
            path,
            "DNSKEY needs flags, protocol, algorithm and key",
        ));
    };
    let flags: u16 = flags
        .parse()
        .map_err(|_| format_error(path, format!("bad DNSKEY flags {flags}")))?;
    if *protocol != "3" || *algorithm != "13" {
        return Err(format_error(
            path,
            format!("DNSKEY protocol {protocol} algorithm {algorithm}: want 3 and 13"),
        ));
    }
    if flags & 0x0080 != 0 {
        return Err(format_error(
            path,
            format!("DNSKEY flags {flags}: the key is revoked (RFC 5011)"),
        ));
    }
    if flags & 0x0100 == 0 {
        return Err(format_error(
            path,
            format!("DNSKEY flags {flags}: not a zone key (bit 7 clear)"),
        ));
    }
    let public = STANDARD
        .decode(rest[3..].concat().as_bytes())
        .map_err(|e| format_error(path, format!("DNSKEY key is not base64: {e}")))?;
    if public.len() != 64 {
        return Err(format_error(
            path,
            format!(
                "DNSKEY key holds {} bytes, not the 64 of a P-256 point",
                public.len()
            ),
        ));
    }
    Ok((zone, flags, public))
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, byte) in rdata.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(*byte) << 8
        } else {
            u32::from(*byte)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

#[cfg(test)]
mod tests;
