//! Server-sent events over an HTTP response body, as the WHATWG spec frames them: lines ending
//! in LF, CRLF or CR; `event:` and `data:` fields (several `data:` lines join with LF); comment
//! lines starting with `:`; an event ends at a blank line.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// One event: its `event:` type (if any) and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// Incremental parser: feed bytes, take complete events.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    ready: VecDeque<SseEvent>,
    skip_lf: bool,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.skip_lf = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    self.line(&String::from_utf8_lossy(&line));
                }
                _ => self.buf.push(b),
            }
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                self.ready.push_back(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }

    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }
}

/// The events of a response body, in order. A transport error ends the stream with `Err`.
pub fn events(response: reqwest::Response) -> impl Stream<Item = Result<SseEvent, String>> + Send {
    let body: ByteStream = Box::pin(
        response
            .bytes_stream()
            .map(|r| r.map_err(|e| e.to_string())),
    );
    futures_util::stream::unfold(
        (body, SseParser::default(), false),
        |(mut body, mut parser, done)| async move {
            loop {
                if let Some(e) = parser.next_event() {
                    return Some((Ok(e), (body, parser, done)));
                }
                if done {
                    return None;
                }
                match body.next().await {
                    Some(Ok(bytes)) => parser.feed(&bytes),
                    Some(Err(e)) => return Some((Err(e), (body, parser, true))),
                    None => {
                        // A final event without its blank line still counts.
                        parser.feed(b"\n\n");
                        if let Some(e) = parser.next_event() {
                            return Some((Ok(e), (body, parser, true)));
                        }
                        return None;
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_events_across_chunk_boundaries_and_line_endings() {
        let mut p = SseParser::default();
        p.feed(b": keep-alive\r\nevent: message_start\r\ndata: {\"a\"");
        assert_eq!(p.next_event(), None);
        p.feed(b":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\r");
        p.feed(b"\r");
        let got: Vec<_> = std::iter::from_fn(|| p.next_event()).collect();
        assert_eq!(
            got,
            [
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "x\ny".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }
}
