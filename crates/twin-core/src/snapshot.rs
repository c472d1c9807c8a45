//! The whole-state snapshot file: a versioned, checksummed container around the
//! simulation's state.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "TWINSNAP"          8 bytes, magic
//! format version      u32 (FORMAT_VERSION)
//! header length       u32, then the header (postcard): scene hash, seed, time, events
//! state length        u64, then the state (postcard)
//! SHA-256             32 bytes over everything before it
//! ```
//!
//! The header can be read without decoding the state (`twin run --resume` reads it to
//! find the scene). A snapshot restores only onto the scene it was taken of: the scene
//! hash covers the scene file and every file it reads, so an edited scene is refused
//! rather than resumed into a state it cannot have produced.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::scene::{Scene, Schedules};
use crate::time::Micros;

/// Bumped whenever the state's layout changes; older snapshots are refused, not guessed.
/// Version 2 added the deviation monitor (observations, sync status, alarms) and the
/// totals of retired vehicles and trucks. Version 3 packs each pending event's
/// `(time, sequence)` into one key and keeps the bottleneck windows' whole minutes as
/// rates (O(1) per credited stretch). Version 4 adds each station's failure source
/// (model or plant) and whether it waits for a repair command, and gives rush orders a
/// due time. Version 5 credits each stretch of the bottleneck windows at its two ends
/// (same fields, different meaning of their values).
pub const FORMAT_VERSION: u32 = 5;
const MAGIC: &[u8; 8] = b"TWINSNAP";
const CHECKSUM_LEN: usize = 32;

/// What a snapshot says about itself, readable without restoring it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// SHA-256 of the scene the state belongs to (see [`crate::Model::scene_hash`]).
    pub scene_hash: [u8; 32],
    /// The path the scene was loaded from, as given; a hint for resuming.
    pub scene_path: String,
    /// Seed of the run.
    pub seed: u64,
    /// Simulated time of the state.
    pub now: Micros,
    /// Events processed up to that time.
    pub events: u64,
}

/// Why a snapshot cannot be read or restored.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a twin snapshot (bad magic bytes)")]
    NotASnapshot,
    #[error("snapshot format version {found} is not supported (this build reads version {supported})")]
    Version { found: u32, supported: u32 },
    #[error("snapshot is truncated or corrupt (checksum mismatch)")]
    Corrupt,
    #[error("snapshot is of another scene (scene hash {found}, this scene {expected})")]
    SceneMismatch { found: String, expected: String },
    #[error("snapshot {what} cannot be decoded: {message}")]
    Decode { what: &'static str, message: String },
}

/// SHA-256 of a scene and the schedules it reads, as parsed (so comments and layout do
/// not count, edits made by experiments do). It hashes their `Debug` rendering, which
/// covers every field in a fixed order (ordered maps, exact floats).
pub fn scene_hash(scene: &Scene, schedules: &Schedules) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(format!("{scene:?}").as_bytes());
    hasher.update(format!("{schedules:?}").as_bytes());
    hasher.finalize().into()
}

/// Writes `state` with its header into the container format.
pub fn encode<T: Serialize>(header: &SnapshotHeader, state: &T) -> Vec<u8> {
    let head = postcard::to_allocvec(header).expect("a header always serialises");
    let body = postcard::to_allocvec(state).expect("the state always serialises");
    let mut out = Vec::with_capacity(MAGIC.len() + 16 + head.len() + body.len() + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Checks magic, version and checksum, and returns the header and the state's bytes.
fn open(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), SnapshotError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let mut at = MAGIC.len();
    let version = u32::from_le_bytes(take::<4>(bytes, &mut at)?);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::Version { found: version, supported: FORMAT_VERSION });
    }
    if bytes.len() < at + CHECKSUM_LEN {
        return Err(SnapshotError::Corrupt);
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if Sha256::digest(content)[..] != *sum {
        return Err(SnapshotError::Corrupt);
    }
    let head_len = u32::from_le_bytes(take::<4>(content, &mut at)?) as usize;
    let head = slice(content, &mut at, head_len)?;
    let header: SnapshotHeader = postcard::from_bytes(head)
        .map_err(|e| SnapshotError::Decode { what: "header", message: e.to_string() })?;
    let body_len = usize::try_from(u64::from_le_bytes(take::<8>(content, &mut at)?))
        .map_err(|_| SnapshotError::Corrupt)?;
    let body = slice(content, &mut at, body_len)?;
    if at != content.len() {
        return Err(SnapshotError::Corrupt);
    }
    Ok((header, body))
}

/// The header of a snapshot, after checking the whole file's integrity.
pub fn read_header(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    open(bytes).map(|(header, _)| header)
}

/// The header and state of a snapshot taken of the scene hashed `scene_hash`.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    scene_hash: &[u8; 32],
) -> Result<(SnapshotHeader, T), SnapshotError> {
    let (header, body) = open(bytes)?;
    if &header.scene_hash != scene_hash {
        return Err(SnapshotError::SceneMismatch {
            found: hex(&header.scene_hash),
            expected: hex(scene_hash),
        });
    }
    let state = postcard::from_bytes(body)
        .map_err(|e| SnapshotError::Decode { what: "state", message: e.to_string() })?;
    Ok((header, state))
}

/// A hash as lower-case hex, for messages and reports.
pub fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> Result<[u8; N], SnapshotError> {
    let s = slice(bytes, at, N)?;
    Ok(s.try_into().expect("slice has length N"))
}

fn slice<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], SnapshotError> {
    let end = at.checked_add(len).filter(|&e| e <= bytes.len()).ok_or(SnapshotError::Corrupt)?;
    let s = &bytes[*at..end];
    *at = end;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader { scene_hash: [7; 32], scene_path: "s.ron".into(), seed: 3, now: 99, events: 5 }
    }

    #[test]
    fn round_trips_and_refuses_what_is_not_its_own() {
        let state = (vec![1u64, 2, 3], "x".to_string());
        let bytes = encode(&header(), &state);
        let (h, back): (SnapshotHeader, (Vec<u64>, String)) = decode(&bytes, &[7; 32]).unwrap();
        assert_eq!((h, back), (header(), state));

        assert!(
            decode::<(Vec<u64>, String)>(&bytes, &[8; 32]).unwrap_err().to_string().contains("another scene")
        );
        assert_eq!(read_header(b"hello world"), Err(SnapshotError::NotASnapshot));
        let mut newer = bytes.clone();
        newer[8] = 9;
        assert_eq!(read_header(&newer), Err(SnapshotError::Version { found: 9, supported: FORMAT_VERSION }));
        for cut in [bytes.len() - 1, 20, 13] {
            assert_eq!(read_header(&bytes[..cut]), Err(SnapshotError::Corrupt), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        assert_eq!(read_header(&flipped), Err(SnapshotError::Corrupt));
    }
}
