//! A local HTTP server that answers with scripted replies (in order; the last one repeats) and
//! records every request it saw.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// One scripted answer: status, headers, and a body sent in the given chunks.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Vec<u8>>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.to_string().into_bytes()],
        }
    }

    #[cfg_attr(not(feature = "bedrock"), allow(dead_code))]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A server-sent-event body, cut into small chunks at awkward places (inside lines and
    /// between `\r` and `\n`) as a network would.
    pub fn sse(text: &str) -> Self {
        let bytes = text.as_bytes();
        let chunks = bytes.chunks(7).map(<[u8]>::to_vec).collect();
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            chunks,
        }
    }

    #[cfg_attr(not(feature = "bedrock"), allow(dead_code))]
    pub fn bytes(status: u16, content_type: &str, chunks: Vec<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks,
        }
    }
}

/// A request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Server {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(replies: Vec<Reply>) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
        let (s, r) = (seen.clone(), replies.clone());
        let app = axum::Router::new().fallback(move |req: Request| {
            let (seen, replies) = (s.clone(), r.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                seen.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    headers: parts.headers,
                    body: body.to_vec(),
                });
                let reply = {
                    let mut q = replies.lock().unwrap();
                    if q.len() > 1 {
                        q.pop_front()
                    } else {
                        q.front().cloned()
                    }
                };
                let Some(reply) = reply else {
                    return Response::builder()
                        .status(500)
                        .body(Body::from("no scripted reply"))
                        .unwrap();
                };
                let mut b = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
                for (k, v) in &reply.headers {
                    b = b.header(k, v);
                }
                let chunks = reply.chunks.into_iter().map(Ok::<_, std::io::Error>);
                b.body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            url,
            seen,
            replies,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Replaces the scripted replies.
    pub fn script(&self, replies: Vec<Reply>) {
        *self.replies.lock().unwrap() = VecDeque::from(replies);
    }
}

/// Collects a stream's events, stopping at the first error.
pub async fn drain(
    mut s: agentry_llm::EventStream,
) -> (Vec<agentry_llm::StreamEvent>, Option<agentry_llm::Error>) {
    use futures_util::StreamExt;
    let mut events = Vec::new();
    while let Some(e) = s.next().await {
        match e {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}
