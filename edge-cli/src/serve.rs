//! `edge-cli camera --serve ADDR`: a live view in the browser. The camera loop publishes each
//! frame (a JPEG with the faces' boxes and labels drawn, and the frame's JSON line) to a [`Hub`];
//! a small HTTP/1.1 server on std's sockets (requests parsed by `httparse`) serves:
//!
//! | path | what |
//! |---|---|
//! | `/` | the page (`live.html`: the picture, labels, latency and frame rate; no build step) |
//! | `/stream.mjpg` | the annotated frames as an MJPEG stream (`multipart/x-mixed-replace`) |
//! | `/events` | the frames' JSON lines as server-sent events (`text/event-stream`) |
//! | `/frame.jpg`, `/frame.json` | the latest frame's picture and JSON (with the camera's status) |
//!
//! Bounds: at most [`MAX_CLIENTS`] connections at once (more get `503`), a request head of at
//! most [`MAX_HEAD`] bytes read within [`READ_TIMEOUT`], writes that stall for [`WRITE_TIMEOUT`]
//! end the connection; a streaming client holds only the latest frame (a slow one skips frames).
//! A camera that stops is reported on the page and in `/frame.json`; the server keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};

/// Connections served at once.
pub const MAX_CLIENTS: usize = 16;
/// Bytes of a request head (request line and headers) at most.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a write may stall before the client is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream with no new frame for this long sends a keep-alive (an SSE comment, or the same
/// frame again), so that a client that went away is noticed and its slot freed.
const IDLE: Duration = Duration::from_secs(2);

const PAGE: &str = include_str!("live.html");
const BOUNDARY: &str = "fer-edge-frame";

/// One published frame.
pub struct Published {
    pub seq: u64,
    pub jpeg: Vec<u8>,
    pub json: String,
}

#[derive(Default)]
struct State {
    latest: Option<Arc<Published>>,
    /// Why the camera stopped, once it has.
    stopped: Option<String>,
}

/// Where the camera loop publishes frames and the server's clients wait for them.
#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
    changed: Condvar,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A client thread that panicked while holding the lock leaves the state as it was:
        // still valid, keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the next frame.
    pub fn publish(&self, frame: Published) {
        self.lock().latest = Some(Arc::new(frame));
        self.changed.notify_all();
    }

    /// Records that the camera stopped (the server keeps serving the last frame).
    pub fn stop(&self, why: &str) {
        self.lock().stopped = Some(why.to_string());
        self.changed.notify_all();
    }

    fn latest(&self) -> (Option<Arc<Published>>, Option<String>) {
        let s = self.lock();
        (s.latest.clone(), s.stopped.clone())
    }

    /// Waits up to `wait` for a frame newer than `after`; returns the latest frame and status.
    fn next(&self, after: u64, wait: Duration) -> (Option<Arc<Published>>, Option<String>) {
        let guard = self.lock();
        let (s, _) = self
            .changed
            .wait_timeout_while(guard, wait, |s| {
                s.stopped.is_none() && s.latest.as_ref().is_none_or(|f| f.seq <= after)
            })
            .unwrap_or_else(|p| p.into_inner());
        (s.latest.clone(), s.stopped.clone())
    }
}

/// Binds `addr` and serves `hub` on a background thread; returns the bound address (port 0
/// picks a free one).
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub fn start(addr: &str, hub: Arc<Hub>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| {
        format!("--serve {addr}: cannot listen there (address in use, or not this machine's)")
    })?;
    let bound = listener
        .local_addr()
        .context("--serve: the bound address")?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("serve".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                if active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    active.fetch_sub(1, Ordering::SeqCst);
                    busy(stream);
                    continue;
                }
                let (hub, active) = (hub.clone(), active.clone());
                let spawned = std::thread::Builder::new()
                    .name("client".into())
                    .spawn(move || {
                        let _slot = Slot(active);
                        let _ = serve_client(stream, &hub);
                    });
                if spawned.is_err() {
                    // No thread for it: the stream was dropped with the closure, and the slot
                    // released with it.
                    continue;
                }
            }
        })
        .context("--serve: cannot start the server thread")?;
    Ok(bound)
}

/// A connection's place among [`MAX_CLIENTS`], released when the client's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a connection over the limit and closes it.
fn busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = respond(
        &mut stream,
        "503 Service Unavailable",
        "text/plain",
        b"too many viewers; try again later\n",
    );
}

/// Reads the request head: at most [`MAX_HEAD`] bytes, within [`READ_TIMEOUT`] in all.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, &'static str> {
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err("timeout");
        }
        let _ = stream.set_read_timeout(Some(left));
        let n = stream.read(&mut buf).map_err(|_| "timeout")?;
        if n == 0 {
            return Err("closed");
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err("too large");
        }
    }
}

fn serve_client(mut stream: TcpStream, hub: &Hub) -> std::io::Result<()> {
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err("too large") => {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
            )
        }
        Err(_) => return Ok(()),
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let (method, path) = match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => (
            req.method.unwrap_or_default().to_string(),
            req.path.unwrap_or_default().to_string(),
        ),
        _ => {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                b"not an HTTP request\n",
            )
        }
    };
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n",
        );
    }
    let path = path.split(['?', '#']).next().unwrap_or("/");
    match path {
        "/" | "/index.html" => respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            PAGE.as_bytes(),
        ),
        "/frame.jpg" => match hub.latest().0 {
            Some(f) => respond(&mut stream, "200 OK", "image/jpeg", &f.jpeg),
            None => respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                b"no frame yet\n",
            ),
        },
        "/frame.json" => {
            let (frame, stopped) = hub.latest();
            let body = status_json(frame.as_deref(), stopped.as_deref());
            respond(&mut stream, "200 OK", "application/json", body.as_bytes())
        }
        "/stream.mjpg" => mjpeg(&mut stream, hub),
        "/events" => events(&mut stream, hub),
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found\n"),
    }
}

/// `{"stopped": null or "why", "frame": {...} or null}`.
fn status_json(frame: Option<&Published>, stopped: Option<&str>) -> String {
    format!(
        "{{\"stopped\":{},\"frame\":{}}}",
        serde_json::to_string(&stopped).unwrap_or_else(|_| "null".into()),
        frame.map_or("null", |f| f.json.as_str())
    )
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: \
         no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

fn stream_head(stream: &mut TcpStream, kind: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nCache-Control: no-store\r\nConnection: \
         close\r\n\r\n"
    )
}

/// The annotated frames as they come, each as one part of a multipart response; the latest
/// frame again after [`IDLE`] without a new one. Ends when the camera stops or the client goes.
fn mjpeg(stream: &mut TcpStream, hub: &Hub) -> std::io::Result<()> {
    stream_head(
        stream,
        &format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
    )?;
    let mut last = 0;
    loop {
        let (frame, stopped) = hub.next(last, IDLE);
        if let Some(f) = frame.filter(|f| stopped.is_none() || f.seq > last) {
            write!(
                stream,
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                f.jpeg.len()
            )?;
            stream.write_all(&f.jpeg)?;
            stream.write_all(b"\r\n")?;
            stream.flush()?;
            last = f.seq;
        }
        if stopped.is_some() {
            return write!(stream, "--{BOUNDARY}--\r\n");
        }
    }
}

/// The frames' JSON lines as server-sent events (`data: {...}`); a comment after [`IDLE`]
/// without a frame; a `stopped` event when the camera stops.
fn events(stream: &mut TcpStream, hub: &Hub) -> std::io::Result<()> {
    stream_head(stream, "text/event-stream")?;
    let mut last = 0;
    loop {
        let (frame, stopped) = hub.next(last, IDLE);
        match &frame {
            Some(f) if f.seq > last => {
                write!(stream, "data: {}\n\n", f.json)?;
                last = f.seq;
            }
            _ => write!(stream, ": idle\n\n")?,
        }
        if let Some(why) = stopped {
            let why = serde_json::to_string(&why).unwrap_or_default();
            write!(stream, "event: stopped\ndata: {why}\n\n")?;
            return stream.flush();
        }
        stream.flush()?;
    }
}
