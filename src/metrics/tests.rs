use super::*;
use prometheus_client::registry::Registry;
use std::time::Duration;

fn scrape(metrics: Arc<Metrics>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encode");
    out
}

#[test]
fn counts_from_every_writer_are_summed() {
    let metrics = Arc::new(Metrics::default());
    let udp = metrics.exclusive();
    let nxdomain = [0x12, 0x34, 0x85, 0x03];
    udp.answered(Path::Live, 1, &nxdomain, Some(Duration::from_micros(3)));
    udp.answered(Path::Live, 1, &nxdomain, Some(Duration::from_micros(30)));
    udp.answered(Path::Live, 1, &nxdomain, None);
    let shared = metrics.shared();
    shared.answered(Path::Live, 1, &nxdomain, Some(Duration::from_millis(2)));
    let servfail = [0, 0, 0x81, 0x82];
    shared.answered(
        Path::Forward,
        65000,
        &servfail,
        Some(Duration::from_secs(9)),
    );
    metrics.shared().dropped();
    let text = scrape(metrics);
    for line in [
        r#"etcd_dns_queries_total{path="live",qtype="A",rcode="NXDOMAIN"} 4"#,
        r#"etcd_dns_queries_total{path="forward",qtype="other",rcode="SERVFAIL"} 1"#,
        r#"etcd_dns_query_duration_seconds_bucket{path="live",le="5e-06"} 1"#,
        r#"etcd_dns_query_duration_seconds_bucket{path="live",le="0.005"} 3"#,
        r#"etcd_dns_query_duration_seconds_count{path="live"} 3"#,
        r#"etcd_dns_query_duration_seconds_bucket{path="forward",le="+Inf"} 1"#,
        "etcd_dns_dropped_total 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

/// Each labelled query type and each path is counted under its own label.
#[test]
fn every_qtype_and_path_counts_under_its_label() {
    let metrics = Arc::new(Metrics::default());
    let thread = metrics.exclusive();
    let noerror = [0, 0, 0x85, 0x00];
    for path in Path::ALL {
        for (code, _) in stats::QTYPES {
            thread.answered(path, code, &noerror, None);
        }
        thread.answered(path, 99, &noerror, None);
    }
    let text = scrape(metrics);
    for path in Path::ALL {
        for (_, qtype) in stats::QTYPES.iter().chain(&[(0, "other")]) {
            let line = format!(
                r#"etcd_dns_queries_total{{path="{}",qtype="{qtype}",rcode="NOERROR"}} 1"#,
                path.label()
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }
}
