//! The zones every harness serves: the live zone's own file (static records that live ones add
//! to) and an ordinary static zone, compiled for the fast path.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;

use crate::dns::zones::ZoneFile;
use crate::zone::{StaticRecords, ZoneConfig};

/// The live zone's file: SOA and NS, and static names that registrations may share.
const LIVE_ZONE: &str = "\
$TTL 5
@        IN SOA  ns hostmaster 1 60 10 3600 5
@        IN NS   ns
ns       IN A    127.0.0.1
gateway  IN A    192.0.2.1
gateway  IN TXT  \"static=true\"
web      IN MX   10 gateway
deep.ent IN AAAA 2001:db8::53
";

/// A static zone: wildcards (one a CNAME), CNAME chains (into a delegation, out of the zone,
/// dangling, a loop), MX, an empty non-terminal, a delegation with glue.
const STATIC_ZONE: &str = "\
$TTL 300
@        IN SOA  ns hostmaster 2026112301 3600 600 86400 60
@        IN NS   ns
ns       IN A    127.0.0.1
www      IN A    192.0.2.80
www      IN AAAA 2001:db8::80
mail     IN A    192.0.2.25
@        IN MX   10 mail
api      IN CNAME www
*.wild   IN A    192.0.2.99
*.wc     IN CNAME api
chain    IN CNAME api
out      IN CNAME www.example.com.
dangling IN CNAME missing
loop1    IN CNAME loop2
loop2    IN CNAME loop1
a.b.c    IN TXT  \"deep\"
sub      IN NS   ns.sub
sub      IN NS   ns.example.com.
ns.sub   IN A    192.0.2.53
todeleg  IN CNAME host.sub
long     IN TXT  \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\" \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"
";

/// The live zone.
pub(super) const LIVE_ORIGIN: &str = "services.local.";
/// The static zone.
pub(super) const STATIC_ORIGIN: &str = "example.internal.";

/// A zone file from `text` with `origin` (the harness's texts are valid).
pub(super) fn zone_file(origin: &str, text: &str) -> ZoneFile {
    let origin = Name::from_ascii(origin).expect("harness origin");
    let (origin, records) = Parser::new(text, None, Some(origin))
        .parse()
        .expect("harness zone file");
    ZoneFile {
        path: PathBuf::from(format!("{origin}zone")),
        origin,
        records,
    }
}

/// The static zone.
pub(super) fn static_zone() -> ZoneFile {
    zone_file(STATIC_ORIGIN, STATIC_ZONE)
}

/// The live zone's static layer, parsed once.
static LIVE_STATICS: LazyLock<Arc<StaticRecords>> =
    LazyLock::new(|| Arc::new(zone_file(LIVE_ORIGIN, LIVE_ZONE).statics()));

/// The live zone's configuration: `services/` under `services.local.` with its zone file.
pub(super) fn live_config() -> ZoneConfig {
    ZoneConfig {
        zone: Name::from_ascii(LIVE_ORIGIN).expect("harness zone"),
        ttl: 5,
        negative_ttl: 5,
        statics: Some(LIVE_STATICS.clone()),
    }
}
