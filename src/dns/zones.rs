//! Static zones: every `*.zone` file (RFC 1035 master format) in `--zones DIR`. The file name
//! minus `.zone` is the origin (`example.internal.zone` → `example.internal.`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{LowerName, Name, RData, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use thiserror::Error;

use crate::zone::StaticRecords;

/// A zone file that cannot be served.
#[derive(Debug, Error)]
pub enum ZoneError {
    /// The directory cannot be read.
    #[error("cannot read zone directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

/// One parsed zone file.
#[derive(Debug, Clone)]
pub struct ZoneFile {
    /// The zone's origin.
    pub origin: Name,
    /// Where it came from.
    pub path: PathBuf,
    /// Its records.
    pub records: BTreeMap<RrKey, RecordSet>,
}

/// What to say instead of hickory's refusal of a DNSSEC record ("RRSIG should be dynamically
/// generated"): static zones are served unsigned, so a signed zone file is refused rather
/// than served with signatures that would go stale, and the user learns what to do.
fn dnssec_refusal(message: &str) -> Option<String> {
    let rtype = message.strip_suffix(" should be dynamically generated")?;
    Some(format!(
        "{rtype} is a DNSSEC record, and static zones are served unsigned (--dnssec-key signs \
         the live zones only): remove the zone's DNSSEC records (RRSIG, NSEC, NSEC3, DNSKEY, \
         CDS…; DS for a child stays) or serve the signed zone from a signer such as Knot"
    ))
}

/// Loads every `*.zone` file in `dir`, sorted by name. A missing directory is an error only
/// when `required` (the default `zones/` may be absent).
pub fn load_dir(dir: &Path, required: bool) -> Result<Vec<ZoneFile>, ZoneError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ZoneError::Dir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "zone") && p.is_file())
        .collect();
    paths.sort();
    paths.iter().map(|p| load_file(p)).collect()
}

/// Parses one zone file; its origin comes from the file name.
pub fn load_file(path: &Path) -> Result<ZoneFile, ZoneError> {
    let parse_error = |message: String| ZoneError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| parse_error("file name is not UTF-8".into()))?;
    let origin = Name::from_ascii(format!("{}.", stem.trim_end_matches('.')))
        .map_err(|e| parse_error(format!("file name does not give a zone name: {e}")))?;
    let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse =
        |text: &str| Parser::new(text, Some(path.to_path_buf()), Some(origin.clone())).parse();
    let (origin, records) = parse(&text).map_err(|e| {
        let message = e.to_string();
        let said = dnssec_refusal(&message);
        // hickory's parser does not say where: find the first line at which a prefix of the
        // file fails the same way (only on error, and zone files are small).
        let lines: Vec<&str> = text.lines().collect();
        let line = (1..=lines.len())
            .find(|n| parse(&lines[..*n].join("\n")).is_err_and(|e| e.to_string() == message));
        let message = said.unwrap_or(message);
        match line {
            Some(n) => parse_error(format!("line {n}: {message}: {}", lines[n - 1].trim())),
            None => parse_error(message),
        }
    })?;
    let has_soa = records
        .keys()
        .any(|k| k.record_type == RecordType::SOA && Name::from(&k.name) == origin);
    if !has_soa {
        return Err(parse_error(format!("no SOA record at the origin {origin}")));
    }
    Ok(ZoneFile {
        origin,
        path: path.to_path_buf(),
        records,
    })
}

impl ZoneFile {
    /// The file's content as the live zone's static layer.
    pub fn statics(&self) -> StaticRecords {
        let apex = LowerName::new(&self.origin);
        let mut statics = StaticRecords::default();
        let mut names: HashMap<LowerName, Vec<_>> = HashMap::new();
        for (key, set) in &self.records {
            for record in set.records_without_rrsigs() {
                match (&record.data, key.name == apex) {
                    (RData::SOA(soa), true) => statics.soa = Some(soa.clone()),
                    (RData::NS(_), true) => statics.ns.push(record.clone()),
                    _ => names
                        .entry(key.name.clone())
                        .or_default()
                        .push(record.clone()),
                }
            }
        }
        statics.names = names;
        statics
    }
}

/// Splits the file for `live` (if any) from the others: its records become the live zone's
/// static layer, the others are served as they are.
pub fn split_live(files: Vec<ZoneFile>, live: &Name) -> (Option<StaticRecords>, Vec<ZoneFile>) {
    let (mine, others): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.origin == *live);
    (mine.first().map(ZoneFile::statics), others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write zone");
        path
    }

    #[test]
    fn loads_a_zone_and_names_the_origin_after_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "example.test.zone",
            "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns\nwww IN A 192.0.2.1\n",
        );
        write(dir.path(), "README", "not a zone");
        let zones = load_dir(dir.path(), true).expect("load");
        assert_eq!(zones.len(), 1);
        assert_eq!(zones[0].origin.to_ascii(), "example.test.");
        let statics = zones[0].statics();
        assert!(statics.soa.is_some());
        assert_eq!(statics.ns.len(), 1);
        assert_eq!(statics.names.len(), 1, "www only: SOA and NS are apart");
    }

    #[test]
    fn broken_files_name_file_and_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(
            dir.path(),
            "bad.test.zone",
            "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\nok IN A 192.0.2.1\nbroken IN A 300.1.1.1\n",
        );
        let error = load_file(&path).expect_err("must fail").to_string();
        assert!(error.contains("bad.test.zone"), "{error}");
        assert!(error.contains("line 4"), "{error}");
        let path = write(
            dir.path(),
            "nosoa.test.zone",
            "$TTL 60\nwww IN A 192.0.2.1\n",
        );
        let error = load_file(&path).expect_err("must fail").to_string();
        assert!(error.contains("no SOA"), "{error}");
        // A signed zone file is refused, saying why and what to do; a DS for a child is fine.
        let signed = "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\nchild IN DS 57412 13 2 E7ABFCC448D025E4FBE8DE63F3C6B4910D073962BFA455FDCE0E898121069A39\n";
        for record in ["@ IN DNSKEY 257 3 13 Ke/INQvymkOfmS3afiCXpMIa5mwrY6kZ+M/RIwv/YYby/0cX6nNwaueUDQxcCz5Y3eajlpn99l/B02yYTtb5DQ==", "www IN NSEC ns.signed.test. A NSEC RRSIG"] {
            let path = write(dir.path(), "signed.test.zone", &format!("{signed}{record}\n"));
            let error = load_file(&path).expect_err("must fail").to_string();
            assert!(
                error.contains("line 4") && error.contains("is a DNSSEC record, and static zones are served unsigned"),
                "{error}"
            );
        }
        let path = write(dir.path(), "signed.test.zone", signed);
        assert!(
            load_file(&path).is_ok(),
            "DS records of a delegation are served"
        );
        assert!(load_dir(&dir.path().join("missing"), true).is_err());
        assert!(load_dir(&dir.path().join("missing"), false)
            .expect("optional")
            .is_empty());
    }
}
