//! The serials a server served, saved across restarts (`--serial-file`): after an etcd wipe the
//! revision starts again from 1, and a restarted server must not hand secondaries a serial older
//! than the one they hold. One line per live zone: `<zone> <serial> <offset>` (offset: what the
//! serial adds to etcd's revision), written at most once a second, by rename.

use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Snapshot, Table};
use crate::logging::LogLimit;
use crate::wire::{name_from_wire, wire_name};

/// A zone's saved serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSerial {
    /// The zone, lowercase wire form.
    pub zone: Vec<u8>,
    /// The last serial served.
    pub serial: u32,
    /// What it added to the revision.
    pub offset: u32,
}

/// A serial file that cannot be read.
#[derive(Debug, Error)]
#[error("{file}: {why}")]
pub struct SavedError {
    file: String,
    why: String,
}

/// Reads `path` (none yet: no serials).
pub fn read(path: &Path) -> Result<Vec<SavedSerial>, SavedError> {
    let bad = |why: String| SavedError {
        file: path.display().to_string(),
        why,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [zone, serial, offset] => hickory_proto::rr::Name::from_ascii(zone)
                .ok()
                .zip(serial.parse::<u32>().ok())
                .zip(offset.parse::<u32>().ok()),
            _ => None,
        };
        let Some(((zone, serial), offset)) = parsed else {
            return Err(bad(format!(
                "line {}: expected `<zone> <serial> <offset>`, got {line:?}",
                n + 1
            )));
        };
        out.push(SavedSerial {
            zone: wire_name(&zone.to_lowercase()).into_vec(),
            serial,
            offset,
        });
    }
    Ok(out)
}

/// The lines of `snapshot`'s zones.
pub fn lines(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for zone in snapshot.zones.iter() {
        let name = name_from_wire(zone.name()).map_or_else(String::new, |n| n.to_ascii());
        let offset = zone.serial.wrapping_sub(zone.revision as u32);
        out.push_str(&format!("{name} {} {offset}\n", zone.serial));
    }
    out
}

/// Writes `text` to `path` by a rename, so that a crash leaves the old file or the new one.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Saves the served serials to `path` whenever they changed, at most once a second, and once
/// more at shutdown (`--serial-file`).
pub async fn keep(path: std::path::PathBuf, table: Arc<Table>, shutdown: CancellationToken) {
    let mut written = String::new();
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        let snapshot = table.load_full();
        if snapshot.ready {
            let lines = lines(&snapshot);
            if lines != written {
                let (to, text) = (path.clone(), lines.clone());
                match tokio::task::spawn_blocking(move || write(&to, &text)).await {
                    Ok(Ok(())) => written = lines,
                    Ok(Err(error)) => {
                        if let Some(suppressed) = SAVE_FAILED.allow() {
                            warn!(path = %path.display(), %error, suppressed,
                                "cannot save the served serials (--serial-file)");
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// Failures to save the serials, logged at most once per interval.
static SAVE_FAILED: LogLimit = LogLimit::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_serials_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("serials");
        assert_eq!(read(&path).expect("absent"), vec![]);
        write(&path, "services.local. 4000000000 12\n\nOther.Zone. 7 0\n").expect("write");
        let got = read(&path).expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].serial, got[0].offset), (4_000_000_000, 12));
        assert_eq!(
            got[1].zone,
            wire_name(&crate::testing::name("other.zone.")).into_vec()
        );
        write(&path, "services.local. x 1\n").expect("write");
        let error = read(&path).expect_err("bad").to_string();
        assert!(error.contains("line 1"), "{error}");
    }
}
