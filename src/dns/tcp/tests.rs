use super::*;

fn clients(max: usize) -> Arc<Clients> {
    Clients::new(max, Arc::new(Metrics::default()))
}

#[test]
fn when_full_the_idlest_connection_makes_room() {
    let clients = clients(3);
    let (a, _) = clients.admit().expect("room");
    let (b, _) = clients.admit().expect("room");
    let (c, _) = clients.admit().expect("room");
    // b went idle first, then a; c is mid-request.
    b.client.idle_since.store(5, Ordering::Relaxed);
    a.client.idle_since.store(9, Ordering::Relaxed);
    c.client.busy();
    let (d, evicted) = clients.admit().expect("b's place");
    assert!(b.client.close.is_cancelled());
    assert!(evicted.is_some_and(|e| Arc::ptr_eq(&e, &b.client)));
    assert!(!a.client.close.is_cancelled() && !c.client.close.is_cancelled());
    d.client.busy();
    let _e = clients.admit().expect("a's place");
    assert!(a.client.close.is_cancelled());
    assert_eq!(clients.metrics.tcp_connections.load(Ordering::Relaxed), 3);
    drop((a, b));
    assert_eq!(clients.open.lock().expect("lock").len(), 3);
    assert_eq!(clients.metrics.tcp_connections.load(Ordering::Relaxed), 3);
}

#[test]
fn the_open_connections_gauge_adds_up_every_listener() {
    let metrics = Arc::new(Metrics::default());
    let (first, second) = (
        Clients::new(2, metrics.clone()),
        Clients::new(2, metrics.clone()),
    );
    let a = first.admit().expect("room");
    let b = second.admit().expect("room");
    let c = second.admit().expect("room");
    assert_eq!(metrics.tcp_connections.load(Ordering::Relaxed), 3);
    drop((a, b));
    assert_eq!(metrics.tcp_connections.load(Ordering::Relaxed), 1);
    drop(c);
    assert_eq!(metrics.tcp_connections.load(Ordering::Relaxed), 0);
}

#[test]
fn when_every_connection_is_busy_the_new_one_is_refused() {
    let clients = clients(2);
    let (a, _) = clients.admit().expect("room");
    let (b, _) = clients.admit().expect("room");
    a.client.busy();
    b.client.busy();
    assert!(clients.admit().is_none());
    b.client.idle();
    assert!(clients.admit().is_some());
}

#[test]
fn a_closed_connection_frees_its_place() {
    let clients = clients(1);
    let (a, _) = clients.admit().expect("room");
    a.client.busy();
    assert!(clients.admit().is_none());
    drop(a);
    assert!(clients.admit().is_some());
    assert_eq!(
        clients.metrics.tcp_max_connections.load(Ordering::Relaxed),
        1
    );
}

#[test]
fn the_default_cap_is_half_the_file_limit_within_bounds() {
    let (soft, _) = crate::rlimit::fd_limit().expect("getrlimit");
    let expected = (soft / 2).clamp(1, MAX_CLIENTS_CEILING as u64) as usize;
    assert_eq!(default_max_clients(), expected);
}
