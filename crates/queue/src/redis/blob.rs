//! A message as the scripts store it (`msg` hash): a line of space-separated fields ("seq
//! exp sent vis prio src group"), then the client's part, one string the client encodes and
//! decodes and the scripts never parse, so sending and receiving cost the server no decoding.
//! A send writes all of it but the sequence number, which the send script puts in front. A
//! receive answers that value and the receipt handle, which holds the receive state
//! ("ID:rc:first:tok"), and they are read here.
//!
//! The blob is `<dedup length>:<dedup><attributes length>:<attributes JSON><body>`, lengths in
//! bytes and decimal, so a plain message is stored as `0:0:` and its body.

use std::collections::BTreeMap;

use crate::{AttributeValue, Error, Message, Result, SendMessage};

/// The blob of a message about to be sent with deduplication id `dedup` (or "").
#[cfg(test)]
fn encode(m: &SendMessage, dedup: &str) -> String {
    let mut out = String::new();
    encode_into(&mut out, m, dedup);
    out
}

/// Appends the blob of a message about to be sent with deduplication id `dedup` (or "").
fn encode_into(out: &mut String, m: &SendMessage, dedup: &str) {
    use std::fmt::Write;
    let attrs = if m.attributes.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&m.attributes).expect("attributes serialize")
    };
    out.reserve(m.body.len() + dedup.len() + attrs.len() + 24);
    for part in [dedup, &attrs] {
        let _ = write!(out, "{}:", part.len());
        out.push_str(part);
    }
    out.push_str(&m.body);
}

/// The stored value of a message about to be sent, but its sequence number: the end of its
/// retention (15 digits, so the scripts find it at a fixed place), when it was sent and when
/// it becomes visible (milliseconds), its priority and group, and the blob.
pub(super) fn stored(
    expires: i64,
    sent: i64,
    visible: i64,
    priority: u8,
    group: &str,
    m: &SendMessage,
    dedup: &str,
) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(m.body.len() + group.len() + 80);
    let _ = writeln!(out, "{expires:015} {sent} {visible} {priority}  {group}");
    encode_into(&mut out, m, dedup);
    out
}

fn unreadable(what: &str) -> Error {
    Error::Backend(format!("redis: stored message has an unreadable {what}"))
}

/// Splits a length-prefixed part off the front of `s`.
fn part(s: &str) -> Option<(&str, &str)> {
    let (len, rest) = s.split_once(':')?;
    let len: usize = len.parse().ok()?;
    if !rest.is_char_boundary(len) {
        return None;
    }
    Some(rest.split_at(len))
}

/// The deduplication id, attributes and body in a blob.
fn decode(blob: &str) -> Result<(&str, BTreeMap<String, AttributeValue>, &str)> {
    let (dedup, rest) = part(blob).ok_or_else(|| unreadable("deduplication id"))?;
    let (attrs, body) = part(rest).ok_or_else(|| unreadable("attribute list"))?;
    let attrs = if attrs.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(attrs).map_err(|_| unreadable("attribute list"))?
    };
    Ok((dedup, attrs, body))
}

/// A received message from what the receive script answers for it: its receipt handle
/// ("ID:rc:first:tok") and its stored value.
pub(super) fn message(handle: String, stored: &str) -> Result<Message> {
    let (info, blob) = stored.split_once('\n').ok_or_else(|| unreadable("value"))?;
    let (dedup, attributes, body) = decode(blob)?;
    let mut f = info.split(' ');
    let mut next = || f.next().ok_or_else(|| unreadable("value"));
    let (seq, _exp, sent, _vis, prio, _src, group) = (
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    );
    let mut r = handle.split(':');
    let mut next = || r.next().ok_or_else(|| unreadable("receipt handle"));
    let (id, rc, fr) = (next()?, next()?, next()?);
    let num = |s: &str| s.parse::<i64>().map_err(|_| unreadable("number"));
    Ok(Message {
        message_id: id.to_owned(),
        body: body.to_owned(),
        attributes,
        receive_count: num(rc)? as u32,
        sent_at: num(sent)?,
        first_received_at: num(fr)?,
        group_id: (!group.is_empty()).then(|| group.to_owned()),
        deduplication_id: (!dedup.is_empty()).then(|| dedup.to_owned()),
        sequence_number: if group.is_empty() {
            None
        } else {
            Some(format!("{:020}", num(seq)?))
        },
        priority: num(prio)? as u8,
        receipt_handle: handle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_whatever_the_body_holds() {
        let m = SendMessage::new("0:1:héllo: wörld")
            .attribute("k", AttributeValue::String("v:1".into()))
            .group("g1");
        let blob = encode(&m, "dé:dup");
        let stored = format!(
            "00000000000000000007 {}",
            stored(
                1_700_000_060_000,
                1_700_000_000_000,
                1_700_000_000_000,
                3,
                "g1",
                &m,
                "dé:dup"
            )
        );
        assert!(stored.starts_with("00000000000000000007 001700000060000 1700000000000 "));
        assert!(stored.ends_with(&format!("\n{blob}")));
        let handle = "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10:2:1700000000001:0123456789abcdef";
        let got = message(handle.into(), &stored).unwrap();
        assert_eq!(got.body, m.body);
        assert_eq!(got.attributes, m.attributes);
        assert_eq!(got.deduplication_id.as_deref(), Some("dé:dup"));
        assert_eq!(got.group_id.as_deref(), Some("g1"));
        assert_eq!(got.sequence_number.as_deref(), Some("00000000000000000007"));
        assert_eq!((got.receive_count, got.priority), (2, 3));
        assert_eq!(got.receipt_handle, handle);
        assert_eq!(got.message_id, "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10");
        assert_eq!(got.first_received_at, 1_700_000_000_001);
        assert_eq!(encode(&SendMessage::new("plain"), ""), "0:0:plain");
    }

    #[test]
    fn a_damaged_blob_is_an_error_not_a_panic() {
        for blob in ["", "x", "9:ab", "0:", "1:é0:"] {
            assert!(decode(blob).is_err(), "{blob:?}");
        }
    }
}
