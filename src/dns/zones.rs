//! Static zones: every `*.zone` file (RFC 1035 master format) in `--zones DIR`. The file name
//! minus `.zone` is the origin (`example.internal.zone` → `example.internal.`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{LowerName, Name, RData, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, ZoneType};
use thiserror::Error;

use crate::table::StaticRecords;

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
    let (origin, records) = Parser::new(text.as_str(), Some(path.to_path_buf()), Some(origin))
        .parse()
        .map_err(|e| parse_error(e.to_string()))?;
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

    /// A zone handler serving the file as it is (for zones other than the live one: small
    /// files, where hickory's in-memory store is fine).
    pub fn handler(&self) -> Result<InMemoryZoneHandler, ZoneError> {
        InMemoryZoneHandler::new(
            self.origin.clone(),
            self.records.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .map_err(|message| ZoneError::Parse {
            path: self.path.clone(),
            message,
        })
    }
}

/// Splits the file for `live` (if any) from the others: its records become the live zone's
/// static layer, the others are served as they are.
pub fn split_live(files: Vec<ZoneFile>, live: &Name) -> (Option<StaticRecords>, Vec<ZoneFile>) {
    let (mine, others): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.origin == *live);
    (mine.first().map(ZoneFile::statics), others)
}
