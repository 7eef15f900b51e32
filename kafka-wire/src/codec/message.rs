//! Whole requests and responses: frame size + header + `kafka-protocol` body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};

use super::header::{encode_request_header, ResponseHeader};
use super::{api_name, CodecError};

/// Appends one size-prefixed request frame for `body` at `version` to `buf`.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
) -> Result<(), CodecError> {
    let start = buf.len();
    buf.put_i32(0); // size, patched below
    encode_request_header(
        buf,
        R::KEY,
        version,
        correlation_id,
        client_id,
        R::header_version(version),
    );
    body.encode(buf, version).map_err(|e| CodecError::Encode {
        api: api_name(R::KEY),
        version,
        reason: e.to_string(),
    })?;
    let size = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Decodes a response frame (without its size prefix) to `R`'s response type.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), CodecError> {
    let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
    let body = decode_body::<R>(frame, version)?;
    Ok((header, body))
}

/// Decodes a response body whose header was already read.
pub fn decode_body<R: Request>(mut body: Bytes, version: i16) -> Result<R::Response, CodecError> {
    R::Response::decode(&mut body, version).map_err(|e| CodecError::Decode {
        api: api_name(R::KEY),
        version,
        reason: e.to_string(),
    })
}

/// The response header version for `R` at `version`. ApiVersions always uses
/// v0 so that a client can read the answer to any version it sent.
pub fn response_header_version<R: Request>(version: i16) -> i16 {
    R::Response::header_version(version)
}
