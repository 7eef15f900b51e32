//! Request header v1/v2 and response header v0/v1.
//!
//! ```text
//! request v1:  api_key i16 | api_version i16 | correlation_id i32 | client_id nullable_string(i16)
//! request v2:  v1 fields | tagged_fields                (flexible versions, KIP-482)
//! response v0: correlation_id i32
//! response v1: correlation_id i32 | tagged_fields
//! ```
//! `client_id` stays a classic (non-compact) string even in v2. Tagged fields we
//! do not know are skipped: nisshi sends default-valued ones Apache Kafka omits.

use bytes::{Buf, BufMut, Bytes};

use super::CodecError;
use crate::records::varint::put_unsigned;

/// A request header as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// API key (0 = Produce, 1 = Fetch, …).
    pub api_key: i16,
    /// Version of the request body.
    pub api_version: i16,
    /// Matches the response to this request.
    pub correlation_id: i32,
    /// `client.id`; `None` is a null string.
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Writes the header in `header_version` (1 or 2; 0 is gone since Kafka 4.0
    /// except for ControlledShutdown, which clients never send).
    pub fn encode(&self, buf: &mut impl BufMut, header_version: i16) {
        encode_request_header(
            buf,
            self.api_key,
            self.api_version,
            self.correlation_id,
            self.client_id.as_deref(),
            header_version,
        );
    }

    /// Reads a header in `header_version` from the front of `frame` (used by
    /// the fault proxy and the scripted broker in tests).
    pub fn decode(frame: &mut Bytes, header_version: i16) -> Result<Self, CodecError> {
        need(frame, 8, "request header")?;
        let api_key = frame.get_i16();
        let api_version = frame.get_i16();
        let correlation_id = frame.get_i32();
        let client_id = if header_version >= 1 {
            read_nullable_string(frame)?
        } else {
            None
        };
        if header_version >= 2 {
            skip_tagged_fields(frame)?;
        }
        Ok(Self {
            api_key,
            api_version,
            correlation_id,
            client_id,
        })
    }
}

/// Writes a request header without building a [`RequestHeader`] (hot path).
pub fn encode_request_header(
    buf: &mut impl BufMut,
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    header_version: i16,
) {
    buf.put_i16(api_key);
    buf.put_i16(api_version);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        match client_id {
            None => buf.put_i16(-1),
            Some(id) => {
                buf.put_i16(id.len() as i16);
                buf.put_slice(id.as_bytes());
            }
        }
    }
    if header_version >= 2 {
        put_unsigned(buf, 0); // no tagged fields
    }
}

/// A response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Correlation id of the request this answers.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Reads the header in `header_version` (0 or 1) from the front of `frame`,
    /// leaving the body.
    pub fn decode(frame: &mut Bytes, header_version: i16) -> Result<Self, CodecError> {
        need(frame, 4, "response header")?;
        let correlation_id = frame.get_i32();
        if header_version >= 1 {
            skip_tagged_fields(frame)?;
        }
        Ok(Self { correlation_id })
    }

    /// Writes the header (for the scripted broker in tests).
    pub fn encode(&self, buf: &mut impl BufMut, header_version: i16) {
        buf.put_i32(self.correlation_id);
        if header_version >= 1 {
            put_unsigned(buf, 0);
        }
    }
}

fn need(buf: &Bytes, needed: usize, what: &'static str) -> Result<(), CodecError> {
    if buf.len() < needed {
        return Err(CodecError::Truncated {
            what,
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

fn read_nullable_string(buf: &mut Bytes) -> Result<Option<String>, CodecError> {
    need(buf, 2, "client_id length")?;
    let len = buf.get_i16();
    if len < 0 {
        return Ok(None);
    }
    need(buf, len as usize, "client_id")?;
    let raw = buf.split_to(len as usize);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| CodecError::Malformed("client_id is not UTF-8"))
}

/// Reads an unsigned varint (at most 5 bytes, as the protocol's `UNSIGNED_VARINT`).
pub fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, CodecError> {
    let mut value: u32 = 0;
    for index in 0..5 {
        if !buf.has_remaining() {
            return Err(CodecError::Truncated {
                what: "unsigned varint",
                needed: index + 1,
                available: index,
            });
        }
        let byte = buf.get_u8();
        value |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(CodecError::Malformed("unsigned varint longer than 5 bytes"))
}

/// Skips a tagged-field section: count, then (tag, size, bytes) per field.
pub fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), CodecError> {
    let count = read_unsigned_varint(buf)?;
    for _ in 0..count {
        let _tag = read_unsigned_varint(buf)?;
        let size = read_unsigned_varint(buf)? as usize;
        need(buf, size, "tagged field")?;
        buf.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_v2_golden_bytes() {
        // ApiVersions (18) v3, correlation id 7, client id "rk", no tagged fields.
        let mut buf = Vec::new();
        encode_request_header(&mut buf, 18, 3, 7, Some("rk"), 2);
        assert_eq!(buf, [0, 18, 0, 3, 0, 0, 0, 7, 0, 2, b'r', b'k', 0]);
    }

    #[test]
    fn request_header_round_trips() {
        let header = RequestHeader {
            api_key: 1,
            api_version: 12,
            correlation_id: -3,
            client_id: None,
        };
        let mut buf = bytes::BytesMut::new();
        header.encode(&mut buf, 2);
        assert_eq!(RequestHeader::decode(&mut buf.freeze(), 2).unwrap(), header);
    }

    proptest::proptest! {
        #[test]
        fn request_headers_round_trip_in_both_versions(
            api_key: i16, api_version: i16, correlation_id: i32,
            client_id in proptest::option::of("[a-z0-9._-]{0,40}"),
            header_version in 1i16..=2,
        ) {
            let header = RequestHeader { api_key, api_version, correlation_id, client_id };
            let mut buf = bytes::BytesMut::new();
            header.encode(&mut buf, header_version);
            let mut frame = buf.freeze();
            proptest::prop_assert_eq!(RequestHeader::decode(&mut frame, header_version).unwrap(), header);
            proptest::prop_assert!(frame.is_empty());
        }

        #[test]
        fn response_header_decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), version in 0i16..=1) {
            let _ = ResponseHeader::decode(&mut Bytes::from(bytes), version);
        }
    }

    #[test]
    fn response_header_v1_skips_unknown_tagged_fields() {
        // correlation id 9, two tagged fields (tag 0 with 2 bytes, tag 5 with 0 bytes), body "B".
        let mut frame = Bytes::from_static(&[0, 0, 0, 9, 2, 0, 2, 0xaa, 0xbb, 5, 0, b'B']);
        let header = ResponseHeader::decode(&mut frame, 1).unwrap();
        assert_eq!(header.correlation_id, 9);
        assert_eq!(&frame[..], b"B");
    }

    #[test]
    fn tagged_field_longer_than_frame_is_an_error() {
        let mut frame = Bytes::from_static(&[0, 0, 0, 9, 1, 0, 0x7f]);
        assert!(matches!(
            ResponseHeader::decode(&mut frame, 1),
            Err(CodecError::Truncated { .. })
        ));
    }
}
