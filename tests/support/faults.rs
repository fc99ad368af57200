//! A fault-injecting TCP proxy on 127.0.0.1 in front of a real server (OpenBao, Unleash) or a
//! fake (Flagsmith, LaunchDarkly). The fault applies to connections accepted after it is set.
//! Every mode is bounded in time and the proxy stops when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the next connections.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Forward untouched.
    None,
    /// Forward, holding every chunk from the client this long (one added round trip each).
    Delay(Duration),
    /// Accept, then close at once without a byte (connection closed before a response).
    Drop,
    /// Accept, then reset the connection (RST).
    Reset,
    /// Accept and read, never answer (a hung server). Held for at most 60 s.
    Hang,
    /// Answer every request with this HTTP response, closing the connection after it.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A server that echoes the request in its error body, as some proxies and frameworks do:
    /// answers `status` with a JSON body whose `detail`, `message` and `errors` hold the
    /// request's header values alone and its raw header lines. With `writes_only`, GET and HEAD
    /// requests are forwarded (one request per connection, `Connection: close`), so reads work
    /// and the write fails with the echo.
    EchoHeaders { status: u16, writes_only: bool },
    /// Forward untouched until a request whose first line contains `request` (e.g.
    /// `"PATCH /api/v2/flags/"`): then, with `forward`, send it on to the server (the change
    /// lands) but hold its answer back until the client gives up (at most 60 s); without
    /// `forward`, close the connection without sending it (nothing lands). The connections
    /// accepted after that get `then`; open ones close at their next request unless `then` is
    /// `Fault::None`.
    LoseAnswer {
        request: String,
        forward: bool,
        then: Box<Fault>,
    },
    /// Forward untouched until a request whose first line contains `request` (e.g.
    /// `"GET /api/client/features/"`): that one is not sent on but answered with this response
    /// (a 429 with `Retry-After`, say), and the connection closed; the fault then becomes
    /// `Fault::None`, so the request sent again reaches the server. Once only.
    AnswerOnce {
        request: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

impl Fault {
    /// The answer to the first `request` is lost after the server got it; nothing else fails.
    pub fn lose_answer(request: &str) -> Fault {
        Fault::LoseAnswer {
            request: request.into(),
            forward: true,
            then: Box::new(Fault::None),
        }
    }
}

impl Fault {
    /// A 429 with `Retry-After: seconds` to the first request whose first line contains
    /// `request`, as Flagsmith's and Unleash's throttles answer it.
    pub fn rate_limit_once(request: &str, retry_after_seconds: u64) -> Fault {
        Fault::AnswerOnce {
            request: request.into(),
            status: 429,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Retry-After".into(), retry_after_seconds.to_string()),
            ],
            body: r#"{"message":"Too many requests, please try again later."}"#.into(),
        }
    }

    pub fn status(status: u16, body: &str) -> Fault {
        Fault::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    /// The fault, and how many more connections get it (`None`: all of them).
    fault: Arc<Mutex<(Fault, Option<usize>)>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let fault = Arc::new(Mutex::new((Fault::None, None)));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared = fault.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                ready_tx
                    .send(listener.local_addr().expect("proxy addr"))
                    .expect("report proxy addr");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let fault = match shared.lock() {
                                Ok(mut current) => match current.1 {
                                    Some(0) => Fault::None,
                                    Some(left) => {
                                        current.1 = Some(left - 1);
                                        current.0.clone()
                                    }
                                    None => current.0.clone(),
                                },
                                Err(_) => Fault::None,
                            };
                            tokio::spawn(handle(client, upstream, fault, shared.clone()));
                        }
                    }
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("proxy started");
        FaultProxy {
            addr,
            fault,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every following connection gets `fault`.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut current) = self.fault.lock() {
            *current = (fault, None);
        }
    }

    /// Only the next `count` connections get `fault`; the ones after pass untouched.
    pub fn set_next(&self, fault: Fault, count: usize) {
        if let Ok(mut current) = self.fault.lock() {
            *current = (fault, Some(count));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether a one-shot fault ([`Fault::AnswerOnce`], [`Fault::LoseAnswer`]) has struck (it
    /// became `Fault::None`).
    pub fn struck(&self) -> bool {
        self.fault
            .lock()
            .is_ok_and(|current| matches!(current.0, Fault::None))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Shared = Arc<Mutex<(Fault, Option<usize>)>>;

async fn handle(mut client: TcpStream, upstream: SocketAddr, fault: Fault, shared: Shared) {
    match fault {
        Fault::LoseAnswer {
            request,
            forward,
            then,
        } => lose_answer(client, upstream, &request, forward, *then, shared).await,
        Fault::AnswerOnce {
            request,
            status,
            headers,
            body,
        } => answer_once(client, upstream, &request, (status, headers, body), shared).await,
        Fault::None => {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        }
        Fault::Delay(delay) => {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let upstream_leg = async {
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    let read = match client_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => read,
                    };
                    tokio::time::sleep(delay).await;
                    if server_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            };
            let downstream_leg = async {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(upstream_leg, downstream_leg);
        }
        Fault::Drop => drop(client),
        Fault::Reset => {
            // A zero linger makes the close an RST and does not block (the deprecation is
            // about non-zero lingers).
            #[allow(deprecated)]
            let _ = client.set_linger(Some(Duration::ZERO));
            drop(client);
        }
        Fault::Hang => {
            let mut buffer = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(60), async {
                while let Ok(read) = client.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                }
            })
            .await;
        }
        Fault::EchoHeaders {
            status,
            writes_only,
        } => echo_headers(client, upstream, status, writes_only).await,
        Fault::Respond {
            status,
            headers,
            body,
        } => {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match client.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
            })
            .await;
            let mut response = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ));
            let _ = client.write_all(response.as_bytes()).await;
            let _ = client.shutdown().await;
        }
    }
}

async fn echo_headers(mut client: TcpStream, upstream: SocketAddr, status: u16, writes_only: bool) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match client.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => request.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let head = String::from_utf8_lossy(&request[..end]).to_string();
    let method = head.split(' ').next().unwrap_or_default().to_string();
    if writes_only && matches!(method.as_str(), "GET" | "HEAD") {
        // Forward this one request, asking both sides to close after it, so the next request
        // comes on a new connection and is looked at again.
        let mut lines: Vec<&str> = head
            .split("\r\n")
            .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        lines.push("Connection: close");
        let mut forwarded = lines.join("\r\n").into_bytes();
        forwarded.extend_from_slice(&request[end..]);
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        if server.write_all(&forwarded).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let header_lines: Vec<&str> = head.split("\r\n").skip(1).collect();
    let values: Vec<&str> = header_lines
        .iter()
        .filter_map(|line| line.split_once(':').map(|(_, value)| value.trim()))
        .collect();
    let echo = format!(
        "request rejected; it carried {}\n{}",
        values.join(" "),
        header_lines.join("\n")
    );
    let body = serde_json::json!({
        "detail": echo,
        "message": echo,
        "errors": [echo],
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// See [`Fault::AnswerOnce`]: requests pass until the matching one, which gets `answer`.
async fn answer_once(
    client: TcpStream,
    upstream: SocketAddr,
    request: &str,
    answer: (u16, Vec<(String, String)>, String),
    shared: Shared,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (status, headers, body) = answer;
    let mut response = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in &headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    // The client's side: forwarded until the matching request, which is answered here and
    // ends the connection; the server's answers go back under the same lock.
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let to_client = client_write.clone();
    let upstream_leg = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let chunk = &buffer[..read];
            let first_line = chunk.split(|b| *b == b'\r').next().unwrap_or_default();
            let armed = shared
                .lock()
                .is_ok_and(|current| matches!(current.0, Fault::AnswerOnce { .. }));
            if armed && String::from_utf8_lossy(first_line).contains(request) {
                if let Ok(mut current) = shared.lock() {
                    *current = (Fault::None, None);
                }
                let mut writer = to_client.lock().await;
                let _ = writer.write_all(response.as_bytes()).await;
                let _ = writer.shutdown().await;
                break;
            }
            if server_write.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let downstream_leg = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if client_write
                .lock()
                .await
                .write_all(&buffer[..read])
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            _ = upstream_leg => {},
            _ = downstream_leg => {},
        }
    })
    .await;
}

/// See [`Fault::LoseAnswer`].
async fn lose_answer(
    client: TcpStream,
    upstream: SocketAddr,
    request: &str,
    forward: bool,
    then: Fault,
    shared: Shared,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let held = AtomicBool::new(false);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream_leg = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let chunk = &buffer[..read];
            // Another connection lost its answer already and the fault became `then`: an open
            // connection (a pooled one, accepted before) fails too rather than pass through.
            let tripped_elsewhere = !held.load(Ordering::SeqCst)
                && shared.lock().is_ok_and(|current| {
                    !matches!(current.0, Fault::LoseAnswer { .. } | Fault::None)
                });
            if tripped_elsewhere {
                break;
            }
            let first_line = chunk.split(|b| *b == b'\r').next().unwrap_or_default();
            if !held.load(Ordering::SeqCst) && String::from_utf8_lossy(first_line).contains(request)
            {
                held.store(true, Ordering::SeqCst);
                if let Ok(mut current) = shared.lock() {
                    *current = (then.clone(), None);
                }
                if !forward {
                    break;
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let downstream_leg = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if held.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    };
    // The client gives up on the held answer (its timeout) and closes: both legs end.
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            _ = upstream_leg => {},
            _ = downstream_leg => {},
        }
    })
    .await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
