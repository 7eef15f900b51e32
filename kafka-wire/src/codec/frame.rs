//! Size-prefixed frames: `size i32 | size bytes`.
//!
//! The decoder checks the size against the maximum *before* it reserves
//! anything, and reserves at most [`READ_CHUNK`] bytes ahead of what arrived, so
//! a hostile size prefix cannot make the client allocate memory it never receives.

use bytes::{Buf, Bytes, BytesMut};

use super::CodecError;

/// Default maximum frame size: 100 MiB, as `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// How far ahead of the received bytes the reader reserves buffer space.
pub const READ_CHUNK: usize = 256 * 1024;

/// Incremental frame decoder for a byte stream.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: usize,
    /// Size of the frame whose prefix was consumed but whose body is incomplete.
    pending: Option<usize>,
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_size`.
    pub fn new(max_frame_size: usize) -> Self {
        Self {
            max_frame_size,
            pending: None,
        }
    }

    /// Takes one complete frame body from the front of `buf`, if there is one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let size = match self.pending {
            Some(size) => size,
            None => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                let size =
                    self.check_size(i32::from_be_bytes(buf[..4].try_into().expect("4 bytes")))?;
                buf.advance(4);
                self.pending = Some(size);
                size
            }
        };
        if buf.len() < size {
            // Reserve toward the frame, but never more than one chunk ahead.
            buf.reserve((size - buf.len()).min(READ_CHUNK));
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(buf.split_to(size).freeze()))
    }

    fn check_size(&self, size: i32) -> Result<usize, CodecError> {
        let size = usize::try_from(size).map_err(|_| CodecError::NegativeFrameSize(size))?;
        if size > self.max_frame_size {
            return Err(CodecError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        Ok(size)
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 3, b'a'][..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"bc\x00\x00\x00\x00");
        assert_eq!(
            decoder.decode(&mut buf).unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(decoder.decode(&mut buf).unwrap().as_deref(), Some(&b""[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_prefix_is_rejected_before_allocating() {
        let mut decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&0x7fff_ffffi32.to_be_bytes()[..]);
        let capacity = buf.capacity();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(CodecError::FrameTooLarge {
                size: 0x7fff_ffff,
                max: 1024
            })
        );
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn large_legal_prefix_reserves_one_chunk_only() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&(90i32 * 1024 * 1024).to_be_bytes()[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= READ_CHUNK + 64);
    }

    proptest::proptest! {
        #[test]
        fn frames_survive_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..8),
            chunk in 1usize..64,
        ) {
            let mut stream = Vec::new();
            for body in &bodies {
                stream.extend_from_slice(&(body.len() as i32).to_be_bytes());
                stream.extend_from_slice(body);
            }
            let mut decoder = FrameDecoder::new(1024);
            let mut buf = BytesMut::new();
            let mut decoded = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                    decoded.push(frame.to_vec());
                }
            }
            proptest::prop_assert_eq!(decoded, bodies);
        }
    }

    #[test]
    fn negative_prefix_is_rejected() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(CodecError::NegativeFrameSize(-5))
        );
    }
}
