//! Frames: a `u32` little-endian length, then one bincode-encoded message.
//!
//! This module is the only user of `bincode` in confine (the crate is unmaintained, see
//! RUSTSEC-2025-0141), so the encoding can be swapped here alone. Two guarantees hold for any
//! input, however hostile:
//!
//! * a frame whose declared length is over the limit is rejected *before* anything is
//!   allocated for it ([`FrameBuffer`] checks the header first);
//! * decoding returns an error and never panics (nesting is bounded by
//!   [`crate::value::MAX_DEPTH`], trailing bytes are an error).

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// The default and largest frame size: 64 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 64 << 20;

/// The bincode limit: no single allocation claim may exceed the largest frame.
const LIMIT: usize = DEFAULT_MAX_FRAME as usize;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<LIMIT>()
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame header declares more bytes than the limit allows.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The declared (or encoded) length.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// The frame's body is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
    /// The frame's body decoded, but bytes were left over.
    #[error("malformed frame: {extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

/// Appends one frame holding `msg` to `out`.
///
/// # Errors
/// [`CodecError::TooLarge`] if the encoded message is over `max` bytes (nothing is appended);
/// [`CodecError::Encode`] if the message cannot be encoded.
pub fn encode_into<M: Serialize>(msg: &M, max: u32, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(e) = bincode::serde::encode_into_std_write(msg, out, config()) {
        out.truncate(start);
        return Err(e.into());
    }
    let len = out.len() - start - HEADER_LEN;
    if len > max as usize {
        out.truncate(start);
        return Err(CodecError::TooLarge {
            len: len as u64,
            max,
        });
    }
    // `len <= max <= u32::MAX`, checked above.
    out[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// One frame holding `msg`, as a new buffer.
///
/// # Errors
/// As [`encode_into`].
pub fn encode<M: Serialize>(msg: &M, max: u32) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(msg, max, &mut out)?;
    Ok(out)
}

/// Decodes a frame *body* (without its header) into a message.
///
/// # Errors
/// [`CodecError::Malformed`] or [`CodecError::TrailingBytes`]; never panics.
pub fn decode_body<M: DeserializeOwned>(body: &[u8]) -> Result<M, CodecError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, config())?;
    if used != body.len() {
        return Err(CodecError::TrailingBytes {
            extra: body.len() - used,
        });
    }
    Ok(msg)
}

/// Accumulates bytes from a stream and splits them into frames.
///
/// Feed it what a `read` returned with [`FrameBuffer::buf_mut`] / [`FrameBuffer::filled`], then
/// take complete frames with [`FrameBuffer::next_frame`]. The header is checked against the
/// limit before the body is buffered, and the buffer grows only as body bytes arrive, so a
/// lying header costs nothing.
#[derive(Debug)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    /// Start of unconsumed data.
    start: usize,
    /// End of valid data.
    end: usize,
    max: u32,
}

impl FrameBuffer {
    /// A buffer that accepts frames of at most `max` body bytes.
    pub fn new(max: u32) -> Self {
        FrameBuffer {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            max,
        }
    }

    /// The frame limit in force.
    pub fn max_frame(&self) -> u32 {
        self.max
    }

    /// Changes the frame limit for frames not yet taken (after a handshake agreed on one).
    pub fn set_max_frame(&mut self, max: u32) {
        self.max = max;
    }

    /// Free space to read into. Always at least 4 KiB, growing only as far as the frame being
    /// received (whose header has already passed the limit check) needs.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        if self.start == self.end {
            // Everything consumed: read at the front again, and let go of the memory a huge
            // frame needed so one big message does not pin it forever.
            self.start = 0;
            self.end = 0;
            if self.buf.len() > 1 << 20 {
                self.buf.truncate(64 * 1024);
                self.buf.shrink_to_fit();
            }
        }
        let pending = self.end - self.start;
        let want = match self.header() {
            Some(len) if (len as u64) <= self.max as u64 => HEADER_LEN + len as usize,
            _ => 0,
        };
        // Grow towards the declared frame size by doubling as bytes actually arrive, so a
        // header that lies within the limit costs memory only in proportion to real data.
        let need = want
            .min(self.buf.len().max(pending) * 2)
            .max(pending + 4096);
        if self.start > 0 && (self.buf.len() - self.end < 4096 || self.buf.len() < need) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end = pending;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of [`FrameBuffer::buf_mut`] as filled.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    fn header(&self) -> Option<u32> {
        let h = self.buf.get(self.start..self.start + HEADER_LEN)?;
        if self.end - self.start < HEADER_LEN {
            return None;
        }
        Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]))
    }

    /// The next complete frame's body, if one is buffered.
    ///
    /// # Errors
    /// [`CodecError::TooLarge`] if the next header declares more than the limit; the stream is
    /// unusable after that.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, CodecError> {
        let Some(len) = self.header() else {
            return Ok(None);
        };
        if len > self.max {
            return Err(CodecError::TooLarge {
                len: len as u64,
                max: self.max,
            });
        }
        let total = HEADER_LEN + len as usize;
        if self.end - self.start < total {
            return Ok(None);
        }
        let body = self.start + HEADER_LEN..self.start + total;
        self.start += total;
        Ok(self.buf.get(body))
    }

    /// `true` if a partial frame is buffered (an EOF now would truncate it).
    pub fn has_partial(&self) -> bool {
        self.end > self.start
    }
}
