//! The Prometheus endpoint: scraped over loopback, its output parses, and
//! its figures are those of the requests sent.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use prometheus_parse::{Sample, Scrape, Value};
use test_support::{Conn, HostProcess, HostStart, WAIT, plugin_entry, wait_until};

/// The metrics address the host logged.
fn metrics_addr(host: &HostProcess) -> SocketAddr {
    let mut addr = None;
    wait_until(WAIT, || {
        addr = host.stderr().lines().find_map(|l| {
            let url = l.split("metrics on http://").nth(1)?;
            url.split('/').next()?.parse().ok()
        });
        addr.is_some()
    });
    addr.unwrap_or_else(|| panic!("no metrics address logged:\n{}", host.stderr()))
}

/// An HTTP GET of `path`: status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("the exposition parses")
}

fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {metric} {labels:?}"))
}

fn number(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{} is {other:?}", sample.metric),
    }
}

#[test]
fn the_metrics_parse_and_count_the_requests_sent() {
    let host = HostStart::new()
        .config(format!(
            "metrics_listen = \"127.0.0.1:0\"\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn();
    let metrics = metrics_addr(&host);
    let (mut conn, _) = Conn::open(host.addr());
    for _ in 0..120 {
        assert!(conn.ask("HELLO").starts_with("MSG Hello from"));
    }
    for _ in 0..4 {
        assert!(conn.ask("FAIL").starts_with("ERR "));
    }

    let scrape = scrape(metrics);
    assert!(scrape.docs.contains_key("linehost_requests_total"));
    assert_eq!(
        number(sample(&scrape, "linehost_requests_total", &[])),
        124.0
    );
    assert_eq!(number(sample(&scrape, "linehost_connections", &[])), 1.0);
    assert_eq!(
        number(sample(&scrape, "linehost_connections_total", &[])),
        1.0
    );
    let hello = [("plugin", "hello"), ("hook", "1")];
    assert_eq!(
        number(sample(&scrape, "linehost_hook_calls_total", &hello)),
        120.0
    );
    let fail = [("plugin", "testkit"), ("hook", "2")];
    assert_eq!(
        number(sample(&scrape, "linehost_hook_errors_total", &fail)),
        4.0
    );
    // The histogram: its +Inf bucket holds every timed call, at least the
    // 100 on blocking threads before the hook earned its place inline.
    let histogram = sample(&scrape, "linehost_hook_duration_seconds", &hello);
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {:?}", histogram.value);
    };
    let all = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("a +Inf bucket");
    assert!((100.0..=120.0).contains(&all.count), "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    sample(
        &scrape,
        "linehost_plugin_loaded_timestamp_seconds",
        &[("plugin", "testkit")],
    );

    assert_eq!(get(metrics, "/").0, "HTTP/1.1 404 Not Found");
    assert!(host.terminate().success());
}

#[test]
fn without_metrics_listen_there_is_no_endpoint() {
    let host = HostStart::new().config(plugin_entry("hello")).spawn();
    let (mut conn, _) = Conn::open(host.addr());
    assert!(conn.ask("HELLO").starts_with("MSG Hello from"));
    assert!(!host.stderr().contains("metrics on"), "{}", host.stderr());
    assert!(host.terminate().success());
}
