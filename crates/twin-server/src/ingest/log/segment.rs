//! The telemetry log on disk: a folder of segment files, each a run of frames that the
//! writer appends and makes durable with `fdatasync` (one `write` and one sync per group
//! commit, which costs about a third of the CPU of a B-tree transaction per commit).
//!
//! - A frame is `len: u32 LE | crc: u32 LE | body`, where `crc` is the CRC-32 (IEEE) of
//!   `body` and `body` is `kind: u8 | key: u64 LE | payload` (postcard): a raw record
//!   under its log sequence, a decision under its key, the new `processed_through`, a
//!   gRPC source's highest committed sequence, or the whole [`State`].
//! - A segment is named by its number (`00000000000000000001.tlog`) and starts with a
//!   state frame, so that once older segments are deleted the oldest one left still
//!   says where the sequences stand.
//! - A crash can leave a torn frame at the end of the newest segment (written but not
//!   synced, so never acknowledged). Reading stops at the first frame whose length or
//!   CRC does not hold; the writer truncates that tail before it appends again. Anywhere
//!   else such a frame is damage: it and the rest of its segment are counted unreadable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Contents, Decision, RawRecord};

/// Segment files end in this.
pub const EXTENSION: &str = "tlog";
const HEADER: usize = 8;
/// Kind and key.
const BODY_MIN: usize = 9;
/// No frame is larger (a gRPC batch is limited far below this); a longer length is damage.
const BODY_MAX: usize = 1 << 30;

pub const STATE: u8 = 0;
pub const RAW: u8 = 1;
pub const DECISION: u8 = 2;
pub const PROCESSED: u8 = 3;
pub const GRPC: u8 = 4;

/// Where the log stands: what a segment's first frame records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The next raw record's log sequence (sequences are never reused).
    pub next_raw: u64,
    /// The next decision's key (keys are never reused).
    pub next_decision: u64,
    /// The highest raw sequence whose decisions are recorded.
    pub processed_through: u64,
    /// Each gRPC source's highest committed sequence.
    pub grpc: BTreeMap<String, u64>,
}

impl Default for State {
    fn default() -> State {
        State { next_raw: 1, next_decision: 1, processed_through: 0, grpc: BTreeMap::new() }
    }
}

/// Appends one frame to `buf`.
pub fn put<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    kind: u8,
    key: u64,
    payload: &T,
) -> Result<(), postcard::Error> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    buf.push(kind);
    buf.extend_from_slice(&key.to_le_bytes());
    let mut out = postcard::to_extend(payload, std::mem::take(buf))?;
    let body = &out[start + HEADER..];
    let (len, crc) = (body.len() as u32, crc32fast::hash(body));
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    *buf = out;
    Ok(())
}

/// One frame read back.
pub struct Frame<'a> {
    pub kind: u8,
    pub key: u64,
    pub payload: &'a [u8],
}

/// Calls `visit` for each good frame at the start of `bytes`; returns the length of that
/// good part (the rest, if any, is a torn or damaged frame and what follows it).
pub fn frames<'a>(bytes: &'a [u8], mut visit: impl FnMut(Frame<'a>)) -> usize {
    let mut at = 0;
    loop {
        let rest = &bytes[at..];
        if rest.len() < HEADER {
            return at;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..HEADER].try_into().expect("4 bytes"));
        if !(BODY_MIN..=BODY_MAX).contains(&len) || rest.len() - HEADER < len {
            return at;
        }
        let body = &rest[HEADER..HEADER + len];
        if crc32fast::hash(body) != crc {
            return at;
        }
        let key = u64::from_le_bytes(body[1..BODY_MIN].try_into().expect("8 bytes"));
        visit(Frame { kind: body[0], key, payload: &body[BODY_MIN..] });
        at += HEADER + len;
    }
}

/// The file of segment `number` in `dir`.
pub fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.{EXTENSION}"))
}

/// The segments in `dir`, oldest first (other files are ignored).
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .extension()
            .filter(|e| *e == EXTENSION)
            .and(path.file_stem())
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(n) = number {
            out.push((n, path));
        }
    }
    out.sort();
    Ok(out)
}

/// What one segment holds, for pruning and for Seek's reads.
#[derive(Clone, Debug)]
pub struct Segment {
    pub number: u64,
    pub path: PathBuf,
    /// Bytes of good frames (durably written, for the writer's own segments).
    pub len: u64,
    /// Raw records in it, and the last one's sequence.
    pub raw: u64,
    pub last_raw: Option<u64>,
    /// Decisions in it, and the last one's key.
    pub decisions: u64,
    pub last_decision: Option<u64>,
}

impl Segment {
    pub fn new(number: u64, path: PathBuf) -> Segment {
        Segment { number, path, len: 0, raw: 0, last_raw: None, decisions: 0, last_decision: None }
    }
}

/// Everything a log folder holds.
pub struct Scan {
    pub contents: Contents,
    pub state: State,
    pub segments: Vec<Segment>,
    /// The newest segment's file length, when a torn frame follows its good part.
    pub torn_tail: Option<u64>,
}

/// Reads every segment of `dir` (`NotFound` when one vanished meanwhile: pruned while
/// the caller read the folder, so read it again).
pub fn scan(dir: &Path) -> std::io::Result<Scan> {
    let files = list(dir)?;
    let mut state = State::default();
    let mut contents = Contents::default();
    let mut first_decision = None;
    let mut segments = Vec::with_capacity(files.len());
    let mut torn_tail = None;
    let last = files.len().saturating_sub(1);
    for (i, (number, path)) in files.into_iter().enumerate() {
        let bytes = std::fs::read(&path)?;
        let mut segment = Segment::new(number, path);
        let good = frames(&bytes, |f| {
            read_frame(f, &mut state, &mut contents, &mut segment, &mut first_decision);
        });
        segment.len = good as u64;
        if good < bytes.len() {
            if i == last {
                torn_tail = Some(bytes.len() as u64);
            } else {
                tracing::warn!(
                    path = %segment.path.display(),
                    offset = good,
                    "damaged telemetry log frame: the rest of this segment is skipped"
                );
                contents.unreadable += 1;
            }
        }
        segments.push(segment);
    }
    contents.next_raw = state.next_raw;
    contents.next_decision = state.next_decision;
    contents.first_decision = first_decision.unwrap_or(state.next_decision);
    contents.processed_through = state.processed_through;
    contents.grpc_committed = state.grpc.clone();
    Ok(Scan { contents, state, segments, torn_tail })
}

fn read_frame(
    f: Frame<'_>,
    state: &mut State,
    contents: &mut Contents,
    segment: &mut Segment,
    first_decision: &mut Option<u64>,
) {
    match f.kind {
        STATE => match postcard::from_bytes::<State>(f.payload) {
            Ok(s) => {
                state.next_raw = state.next_raw.max(s.next_raw);
                state.next_decision = state.next_decision.max(s.next_decision);
                state.processed_through = state.processed_through.max(s.processed_through);
                for (source, seq) in s.grpc {
                    let at = state.grpc.entry(source).or_default();
                    *at = (*at).max(seq);
                }
            }
            Err(_) => contents.unreadable += 1,
        },
        RAW => {
            state.next_raw = state.next_raw.max(f.key + 1);
            segment.raw += 1;
            segment.last_raw = Some(f.key);
            match postcard::from_bytes::<RawRecord>(f.payload) {
                Ok(record) => contents.raw.push((f.key, record)),
                Err(_) => contents.unreadable += 1,
            }
        }
        DECISION => {
            state.next_decision = state.next_decision.max(f.key + 1);
            first_decision.get_or_insert(f.key);
            segment.decisions += 1;
            segment.last_decision = Some(f.key);
            match postcard::from_bytes::<Decision>(f.payload) {
                Ok(d) => {
                    contents.decisions.push(d);
                    contents.decision_keys.push(f.key);
                }
                Err(_) => contents.unreadable += 1,
            }
        }
        PROCESSED => state.processed_through = state.processed_through.max(f.key),
        GRPC => match postcard::from_bytes::<String>(f.payload) {
            Ok(source) => {
                let at = state.grpc.entry(source).or_default();
                *at = (*at).max(f.key);
            }
            Err(_) => contents.unreadable += 1,
        },
        _ => contents.unreadable += 1,
    }
}

/// The decisions with keys from `from` on in the first `len` bytes of `path`.
pub fn decisions_in(path: &Path, len: u64, from: u64, out: &mut Vec<(u64, Decision)>) -> std::io::Result<()> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(len as usize);
    std::fs::File::open(path)?.take(len).read_to_end(&mut bytes)?;
    frames(&bytes, |f| {
        if f.kind == DECISION && f.key >= from {
            match postcard::from_bytes::<Decision>(f.payload) {
                Ok(d) => out.push((f.key, d)),
                Err(e) => tracing::warn!(key = f.key, error = %e, "unreadable telemetry decision skipped"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_reading_stops_at_a_torn_or_damaged_frame() {
        let mut buf = Vec::new();
        put(
            &mut buf,
            RAW,
            7,
            &RawRecord::Mqtt { topic: "t".into(), payload: vec![1, 2], received_unix_ms: 3 },
        )
        .expect("put");
        put(&mut buf, PROCESSED, 7, &()).expect("put");
        let whole = buf.len();
        put(&mut buf, GRPC, 9, "mes").expect("put");
        let mut seen = Vec::new();
        assert_eq!(frames(&buf, |f| seen.push((f.kind, f.key, f.payload.to_vec()))), buf.len());
        assert_eq!(seen[1], (PROCESSED, 7, vec![]));
        assert_eq!(postcard::from_bytes::<String>(&seen[2].2).expect("source"), "mes");
        // Torn: the last frame cut short.
        assert_eq!(frames(&buf[..buf.len() - 1], |_| {}), whole);
        // Damaged: a flipped bit in the last frame's body.
        let mut bad = buf.clone();
        *bad.last_mut().expect("byte") ^= 1;
        assert_eq!(frames(&bad, |_| {}), whole);
        // A length no frame has.
        let mut bad = buf;
        bad[whole..whole + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(frames(&bad, |_| {}), whole);
    }
}
