//! The frame decoder fed in arbitrary chunks, then the response header.
#![no_main]

use bytes::BytesMut;
use kafka_wire::codec::{FrameDecoder, ResponseHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new(1 << 16);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(mut frame)) => {
                    let _ = ResponseHeader::decode(&mut frame.clone(), 0);
                    let _ = ResponseHeader::decode(&mut frame, 1);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
