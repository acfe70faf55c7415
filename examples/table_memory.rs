//! Live heap of the table at N instances (`cargo run --release --example table_memory -- 100000`):
//! what one registered instance costs, without etcd or sockets.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use etcd_dns::table::Registry;
use etcd_dns::zone::ZoneConfig;
use hickory_proto::rr::Name;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "100000".into())
        .parse()?;
    let config = Arc::new(ZoneConfig {
        zone: Name::from_ascii("services.local.")?,
        ttl: 5,
        negative_ttl: 5,
        statics: None,
    });
    let before = LIVE.load(Ordering::Relaxed);
    let mut registry = Registry::new(config);
    for i in 0..n {
        let ip = 0x0a00_0001u32 + i as u32;
        let value = format!(r#"{{"IP":"{}"}}"#, std::net::Ipv4Addr::from(ip));
        registry.put(format!("services/n{i}").as_bytes(), value.as_bytes());
    }
    let registered = LIVE.load(Ordering::Relaxed);
    let snapshot = registry.snapshot();
    let built = LIVE.load(Ordering::Relaxed);
    println!(
        "{n} instances: {:.1} MB after puts, {:.1} MB with encoded answers; {} bytes per instance",
        (registered - before) as f64 / 1e6,
        (built - before) as f64 / 1e6,
        (built - before) / n as isize
    );
    drop(snapshot);
    drop(registry);
    println!(
        "after dropping the table: {} bytes still allocated",
        LIVE.load(Ordering::Relaxed) - before
    );
    Ok(())
}
