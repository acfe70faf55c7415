//! `etcd-dns dnssec keygen ZONE` and `etcd-dns dnssec ds KEY`: a zone's key made, and the DS
//! record its parent zone needs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hickory_proto::rr::Name;

use super::key::ZoneKey;

/// DNSSEC keys of the live zones: make one, print its DS record.
#[derive(Parser, Debug)]
#[command(name = "etcd-dns dnssec", version)]
pub struct DnssecArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a key (ECDSA P-256, algorithm 13, flags 257) for ZONE, written as BIND's
    /// dnssec-keygen writes it: K<zone>+013+<tag>.private and .key in DIR; prints the path
    /// to give to --dnssec-key, then the DS record for the parent zone
    Keygen {
        /// The zone the key signs
        zone: Name,
        /// Directory to write the two files to
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print the DS record (SHA-256) of a key for the parent zone, and its DNSKEY: the trust
    /// anchor of a validator that has no parent to ask
    Ds {
        /// The key: its .private or .key file (both must be there)
        key: PathBuf,
    },
}

/// Runs `etcd-dns dnssec …` with `args` (the words after `dnssec`), printing to stdout.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<()> {
    let args = DnssecArgs::parse_from(std::iter::once("etcd-dns dnssec".into()).chain(args));
    match args.command {
        Command::Keygen { zone, dir } => {
            let (key, path) = ZoneKey::generate(&zone, &dir)?;
            println!("{}", path.display());
            println!("{}", key.ds_text());
        }
        Command::Ds { key } => {
            let key = ZoneKey::read(&key)?;
            println!("{}", key.ds_text());
            println!("{} IN DNSKEY {}", key.zone, key.dnskey_text());
        }
    }
    Ok(())
}
