//! MQTT 3.1.1 packets as the twin's subscriber needs them (OASIS MQTT 3.1.1, section 2
//! and 3): encoders for what a client sends (CONNECT, SUBSCRIBE, PUBLISH QoS 0/1,
//! PUBACK, PINGREQ, DISCONNECT) and an incremental decoder for what a broker sends
//! (CONNACK, SUBACK, PUBLISH QoS 0/1, PUBACK, PINGRESP).
//!
//! The decoder works on a read buffer that may hold several packets and a partial one:
//! [`decode`] takes one whole packet off its front, or says that more bytes are needed.
//! A packet whose declared length is over [`MAX_PACKET`], or whose contents break the
//! specification, is an error naming the packet (the connection is then dropped); no
//! input makes it panic.

use bytes::{Buf, BytesMut};

/// Largest packet accepted from the broker (its remaining length), bytes.
pub const MAX_PACKET: usize = 1 << 20;

/// MQTT control packet types (the high nibble of the first byte).
const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

/// Names of the packet types, for errors (index = type).
const NAMES: [&str; 16] = [
    "reserved packet type 0",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "reserved packet type 15",
];

/// Delivery guarantee of a publish or subscription. QoS 2 is not used by the twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
}

/// A PUBLISH, in either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Set by the sender on a redelivery.
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: String,
    /// Packet identifier; 0 (absent on the wire) for QoS 0.
    pub pkid: u16,
    pub payload: Vec<u8>,
}

/// A packet from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// The answer to CONNECT: `code` 0 is accepted, 1..=5 a refusal ([`connack_reason`]).
    ConnAck {
        session_present: bool,
        code: u8,
    },
    /// A SUBSCRIBE's answer: one code per topic filter, in order (0x80: refused).
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    Publish(Publish),
    /// The broker has a publish of ours (QoS 1).
    PubAck {
        pkid: u16,
    },
    PingResp,
}

/// Why bytes from the broker are not a packet the twin accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("MQTT {packet}: remaining length {len} bytes is over the limit of {max}")]
    TooLarge { packet: &'static str, len: usize, max: usize },
    #[error("MQTT {packet}: malformed: {message}")]
    Malformed { packet: &'static str, message: &'static str },
    #[error("MQTT {packet}: not a packet a broker sends to a client")]
    Unexpected { packet: &'static str },
}

/// The CONNACK return codes 1..=5 in words (MQTT 3.1.1, 3.2.2.3).
pub fn connack_reason(code: u8) -> &'static str {
    match code {
        0 => "accepted",
        1 => "refused: unacceptable protocol version",
        2 => "refused: client identifier rejected",
        3 => "refused: server unavailable",
        4 => "refused: bad user name or password",
        5 => "refused: not authorised",
        _ => "refused: unknown return code",
    }
}

/// Reads the variable-length "remaining length" at the start of `bytes`: Ok(None) while
/// it is incomplete, else (value, bytes it took).
fn remaining_length(bytes: &[u8], packet: &'static str) -> Result<Option<(usize, usize)>, CodecError> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        if i == 4 {
            break;
        }
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(CodecError::Malformed { packet, message: "remaining length longer than 4 bytes" });
    }
    Ok(None)
}

/// Takes one whole packet off the front of `buf`: Ok(None) when `buf` holds only part of
/// one (nothing is consumed; read more and call again).
pub fn decode(buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let kind = first >> 4;
    let flags = first & 0x0f;
    let packet = NAMES[usize::from(kind)];
    let Some((len, len_bytes)) = remaining_length(&buf[1..], packet)? else { return Ok(None) };
    if len > MAX_PACKET {
        return Err(CodecError::TooLarge { packet, len, max: MAX_PACKET });
    }
    if buf.len() < 1 + len_bytes + len {
        buf.reserve(1 + len_bytes + len - buf.len());
        return Ok(None);
    }
    buf.advance(1 + len_bytes);
    let body = buf.split_to(len);
    let malformed = |message| CodecError::Malformed { packet, message };
    let fixed_flags = |expected: u8| {
        if flags == expected {
            Ok(())
        } else {
            Err(malformed("reserved flags of the fixed header are wrong"))
        }
    };
    let two = |body: &[u8]| -> Result<u16, CodecError> {
        match body {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(malformed("expected a remaining length of 2")),
        }
    };
    match kind {
        CONNACK => {
            fixed_flags(0)?;
            let [ack_flags, code] = body[..] else {
                return Err(malformed("expected a remaining length of 2"));
            };
            if ack_flags & 0xfe != 0 {
                return Err(malformed("reserved acknowledge flags are set"));
            }
            Ok(Some(Incoming::ConnAck { session_present: ack_flags & 1 == 1, code }))
        }
        SUBACK => {
            fixed_flags(0)?;
            if body.len() < 3 {
                return Err(malformed("no packet identifier and return code"));
            }
            let pkid = u16::from_be_bytes([body[0], body[1]]);
            let codes = body[2..].to_vec();
            if codes.iter().any(|c| !matches!(c, 0 | 1 | 2 | 0x80)) {
                return Err(malformed("a return code other than 0, 1, 2 or 0x80"));
            }
            Ok(Some(Incoming::SubAck { pkid, codes }))
        }
        PUBACK => {
            fixed_flags(0)?;
            Ok(Some(Incoming::PubAck { pkid: two(&body)? }))
        }
        PINGRESP => {
            fixed_flags(0)?;
            if !body.is_empty() {
                return Err(malformed("expected a remaining length of 0"));
            }
            Ok(Some(Incoming::PingResp))
        }
        PUBLISH => decode_publish(flags, &body).map(|p| Some(Incoming::Publish(p))),
        _ => Err(CodecError::Unexpected { packet }),
    }
}

fn decode_publish(flags: u8, body: &[u8]) -> Result<Publish, CodecError> {
    let malformed = |message| CodecError::Malformed { packet: "PUBLISH", message };
    let qos = match (flags >> 1) & 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => return Err(malformed("QoS 2, which the twin never subscribes with")),
        _ => return Err(malformed("QoS 3 is not a QoS")),
    };
    let dup = flags & 8 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(malformed("DUP set on a QoS 0 publish"));
    }
    if body.len() < 2 {
        return Err(malformed("no topic length"));
    }
    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let rest = &body[2..];
    if rest.len() < topic_len {
        return Err(malformed("topic longer than the packet"));
    }
    let topic = std::str::from_utf8(&rest[..topic_len]).map_err(|_| malformed("topic is not UTF-8"))?;
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(malformed("topic is empty or holds a wildcard or NUL"));
    }
    let mut rest = &rest[topic_len..];
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        let [a, b, ..] = rest[..] else { return Err(malformed("no packet identifier")) };
        rest = &rest[2..];
        match u16::from_be_bytes([a, b]) {
            0 => return Err(malformed("packet identifier 0")),
            id => id,
        }
    };
    Ok(Publish { dup, qos, retain: flags & 1 != 0, topic: topic.to_owned(), pkid, payload: rest.to_vec() })
}

/// Appends the fixed header: type and flags, then the remaining length.
fn header(out: &mut Vec<u8>, first: u8, len: usize) {
    out.push(first);
    let mut x = len;
    loop {
        let mut byte = (x % 128) as u8;
        x /= 128;
        if x > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if x == 0 {
            break;
        }
    }
}

/// Appends a UTF-8 string with its two-byte length (callers keep strings under 64 KiB).
fn string(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

/// CONNECT settings.
#[derive(Clone, Debug)]
pub struct Connect<'a> {
    pub client_id: &'a str,
    /// Seconds; the client sends something at least this often (PINGREQ when idle).
    pub keep_alive_s: u16,
    /// Off: the broker keeps the subscriptions and unacknowledged messages.
    pub clean_session: bool,
}

/// Appends a CONNECT (protocol level 4, no will, no user name or password).
pub fn connect(out: &mut Vec<u8>, c: &Connect<'_>) {
    header(out, CONNECT << 4, 10 + 2 + c.client_id.len());
    string(out, "MQTT");
    out.push(4);
    out.push(if c.clean_session { 0x02 } else { 0 });
    out.extend_from_slice(&c.keep_alive_s.to_be_bytes());
    string(out, c.client_id);
}

/// Appends a SUBSCRIBE of `filters` under packet identifier `pkid`.
pub fn subscribe(out: &mut Vec<u8>, pkid: u16, filters: &[(String, QoS)]) {
    let len = 2 + filters.iter().map(|(f, _)| 2 + f.len() + 1).sum::<usize>();
    header(out, SUBSCRIBE << 4 | 0x02, len);
    out.extend_from_slice(&pkid.to_be_bytes());
    for (filter, qos) in filters {
        string(out, filter);
        out.push(*qos as u8);
    }
}

/// Appends a PUBLISH.
pub fn publish(out: &mut Vec<u8>, p: &Publish) {
    let id = if p.qos == QoS::AtMostOnce { 0 } else { 2 };
    let first = PUBLISH << 4 | u8::from(p.dup) << 3 | (p.qos as u8) << 1 | u8::from(p.retain);
    header(out, first, 2 + p.topic.len() + id + p.payload.len());
    string(out, &p.topic);
    if id > 0 {
        out.extend_from_slice(&p.pkid.to_be_bytes());
    }
    out.extend_from_slice(&p.payload);
}

/// Appends a PUBACK for the broker's publish `pkid`.
pub fn puback(out: &mut Vec<u8>, pkid: u16) {
    out.extend_from_slice(&[PUBACK << 4, 2]);
    out.extend_from_slice(&pkid.to_be_bytes());
}

/// Appends a PINGREQ.
pub fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[PINGREQ << 4, 0]);
}

/// Appends a DISCONNECT.
pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[DISCONNECT << 4, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(bytes: &[u8]) -> BytesMut {
        BytesMut::from(bytes)
    }

    #[test]
    fn client_packets_are_encoded_as_the_specification_says() {
        let mut out = Vec::new();
        connect(&mut out, &Connect { client_id: "twin", keep_alive_s: 10, clean_session: false });
        assert_eq!(out, [0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 10, 0, 4, b't', b'w', b'i', b'n']);
        out.clear();
        subscribe(&mut out, 7, &[("a/+".into(), QoS::AtLeastOnce), ("b".into(), QoS::AtMostOnce)]);
        assert_eq!(out, [0x82, 12, 0, 7, 0, 3, b'a', b'/', b'+', 1, 0, 1, b'b', 0]);
        out.clear();
        puback(&mut out, 0x1234);
        pingreq(&mut out);
        disconnect(&mut out);
        assert_eq!(out, [0x40, 2, 0x12, 0x34, 0xc0, 0, 0xe0, 0]);
    }

    #[test]
    fn publishes_round_trip_and_long_ones_use_several_length_bytes() {
        for (qos, len) in [(QoS::AtMostOnce, 0), (QoS::AtLeastOnce, 5), (QoS::AtLeastOnce, 300_000)] {
            let p = Publish {
                dup: qos == QoS::AtLeastOnce,
                qos,
                retain: false,
                topic: "spBv1.0/twin/DDATA/hall/saw".into(),
                pkid: if qos == QoS::AtMostOnce { 0 } else { 65535 },
                payload: (0..len).map(|i| i as u8).collect(),
            };
            let mut out = Vec::new();
            publish(&mut out, &p);
            let mut b = buf(&out);
            assert_eq!(decode(&mut b).expect("decodes"), Some(Incoming::Publish(p)));
            assert!(b.is_empty());
        }
        // 300,000 = 0xE0 0xA7 0x12 in the variable-length encoding.
        let mut out = Vec::new();
        header(&mut out, 0x30, 300_000);
        assert_eq!(out, [0x30, 0xe0, 0xa7, 0x12]);
    }

    #[test]
    fn partial_packets_wait_for_more_bytes_and_several_come_out_in_order() {
        let mut wire = vec![0x20, 2, 1, 0, 0x90, 4, 0, 1, 1, 0x80, 0x40, 2, 0, 9, 0xd0, 0];
        publish(
            &mut wire,
            &Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: "t".into(),
                pkid: 3,
                payload: b"x".to_vec(),
            },
        );
        let want = [
            Incoming::ConnAck { session_present: true, code: 0 },
            Incoming::SubAck { pkid: 1, codes: vec![1, 0x80] },
            Incoming::PubAck { pkid: 9 },
            Incoming::PingResp,
        ];
        // Fed one byte at a time, the packets come out whole and in order.
        let mut b = BytesMut::new();
        let mut got = Vec::new();
        for byte in &wire {
            b.extend_from_slice(&[*byte]);
            while let Some(p) = decode(&mut b).expect("valid") {
                got.push(p);
            }
        }
        assert_eq!(got[..4], want);
        assert!(matches!(&got[4], Incoming::Publish(p) if p.retain && p.pkid == 3 && p.payload == b"x"));
        assert!(b.is_empty());
    }

    #[test]
    fn bad_packets_are_errors_that_name_the_packet() {
        let err = |bytes: &[u8]| decode(&mut buf(bytes)).expect_err("an error").to_string();
        assert_eq!(
            err(&[0x30, 0x80, 0x80, 0x80, 0x01]),
            "MQTT PUBLISH: remaining length 2097152 bytes is over the limit of 1048576"
        );
        assert!(err(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).contains("longer than 4 bytes"));
        assert!(err(&[0x20, 3, 0, 0, 0]).starts_with("MQTT CONNACK: malformed"));
        assert!(err(&[0x22, 2, 0, 0]).contains("reserved flags"));
        assert!(err(&[0x34, 5, 0, 1, b't', 0, 1]).contains("QoS 2"));
        assert!(err(&[0x32, 5, 0, 1, b't', 0, 0]).contains("packet identifier 0"));
        assert!(err(&[0x30, 3, 0, 9, b't']).contains("topic longer"));
        assert!(err(&[0x30, 3, 0, 1, 0xff]).contains("UTF-8"));
        assert!(err(&[0x90, 3, 0, 1, 7]).contains("return code"));
        assert_eq!(err(&[0x10, 0]), "MQTT CONNECT: not a packet a broker sends to a client");
        assert_eq!(err(&[0x60, 2, 0, 1]), "MQTT PUBREL: not a packet a broker sends to a client");
    }

    /// xorshift64*: deterministic noise without a dependency.
    fn noise(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_and_truncated_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut valid = Vec::new();
        publish(
            &mut valid,
            &Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: "spBv1.0/g/NDATA/n".into(),
                pkid: 42,
                payload: vec![1, 2, 3, 4],
            },
        );
        valid.extend_from_slice(&[0x90, 3, 0, 1, 1, 0x20, 2, 0, 0]);
        // Every truncation of valid packets: partial, never an error or a panic.
        for cut in 0..valid.len() {
            let mut b = buf(&valid[..cut]);
            while let Ok(Some(_)) = decode(&mut b) {}
        }
        let (mut decoded, mut errors) = (0, 0);
        for round in 0..20_000 {
            let len = (noise(&mut state) % 40) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| noise(&mut state) as u8).collect();
            if round % 2 == 0 && !bytes.is_empty() {
                // Mostly-valid headers reach the body parsers more often.
                bytes[0] = [0x20, 0x30, 0x32, 0x3a, 0x40, 0x90, 0xd0][round % 7];
                if bytes.len() > 1 {
                    bytes[1] = (len as u8).saturating_sub(2);
                }
            }
            if round % 3 == 0 {
                // Flip bits of the valid stream.
                bytes = valid.clone();
                let at = (noise(&mut state) as usize) % bytes.len();
                bytes[at] ^= 1 << (noise(&mut state) % 8);
            }
            let mut b = buf(&bytes);
            loop {
                match decode(&mut b) {
                    Ok(Some(_)) => decoded += 1,
                    Ok(None) => break,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
        assert!(decoded > 1000 && errors > 1000, "both paths exercised: {decoded} decoded, {errors} errors");
    }
}
