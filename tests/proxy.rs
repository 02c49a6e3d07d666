//! HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as a corporate network sets them, through a proxy
//! on loopback that the test runs: the daemon's requests go through it, and NO_PROXY
//! sends them direct. Nothing leaves 127.0.0.1: the https case is checked at the CONNECT
//! the proxy receives, which it refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A minimal forward proxy: records each request line; forwards plain-http requests to
/// the loopback host they name, and answers every CONNECT with 403.
struct Proxy {
    addr: String,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn start_proxy() -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let _ = serve(conn, s).await;
            });
        }
    });
    Proxy { addr, seen }
}

async fn serve(conn: TcpStream, seen: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut client = BufReader::new(conn);
    let mut line = String::new();
    if client.read_line(&mut line).await? == 0 {
        return Ok(());
    }
    let line = line.trim_end().to_owned();
    seen.lock().unwrap().push(line.clone());
    let mut head = format!("{line}\r\n");
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        client.read_line(&mut h).await?;
        if let Some((k, v)) = h.trim_end().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        head.push_str(&h);
        if h == "\r\n" || h.is_empty() {
            break;
        }
    }
    if line.starts_with("CONNECT ") {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    // GET http://127.0.0.1:PORT/path HTTP/1.1: only loopback targets are forwarded.
    let target = line
        .split(' ')
        .nth(1)
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|u| u.split('/').next())
        .filter(|h| h.starts_with("127.0.0.1:"))
        .map(str::to_owned);
    let Some(target) = target else {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await?;
    // One request per upstream connection, so the answer's end is the connection's.
    let head = head.replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
    let mut upstream = TcpStream::connect(&target).await?;
    upstream.write_all(head.as_bytes()).await?;
    upstream.write_all(&body).await?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).await?;
    client.get_mut().write_all(&answer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_carries_the_login_to_genesys() {
    let proxy = start_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[genesys]\nregion = \"mypurecloud.de\"\nclient_id = \"id\"\nrequest_timeout = \"2s\"\n\n\
         [table]\nname = \"QueueAgentCounts\"\n\n[queues]\nnames = [\"Sales\"]\n\n[http]\nlisten = \"off\"\n",
    )
    .unwrap();
    let cfg = ConfigFile { dir, path };
    let url = format!("http://{}", proxy.addr);
    for var in ["HTTPS_PROXY", "https_proxy"] {
        proxy.seen.lock().unwrap().clear();
        let out = run_bin_with(&["check"], &cfg, &[(var, &url)]).await;
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "the proxy refused: {stdout}{stderr}");
        let seen = proxy.seen.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|l| l == "CONNECT login.mypurecloud.de:443 HTTP/1.1"),
            "{var}: the login went to the proxy: {seen:?}\n{stdout}{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_is_used_unless_no_proxy_names_the_host() {
    let (sim, cfg) = sales().await;
    let proxy = start_proxy().await;
    let url = format!("http://{}", proxy.addr);

    let out = run_bin_with(&["once"], &cfg, &[("HTTP_PROXY", &url)]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 row written"), "{stdout}");
    let seen = proxy.seen.lock().unwrap().clone();
    let base = sim.base_url();
    let base = base.trim_end_matches('/');
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("POST {base}/oauth/token"))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.starts_with(&format!(
            "POST {base}/api/v2/analytics/queues/observations/query"
        ))),
        "{seen:?}"
    );

    proxy.seen.lock().unwrap().clear();
    let out = run_bin_with(
        &["once"],
        &cfg,
        &[("HTTP_PROXY", &url), ("NO_PROXY", "127.0.0.1")],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        proxy.seen.lock().unwrap().is_empty(),
        "NO_PROXY sends requests direct: {:?}",
        proxy.seen.lock().unwrap()
    );
}
