//! Record batches from a fetch response: any bytes, CRC checked and unchecked
//! (unchecked lets the fuzzer reach the record parser and every codec).
#![no_main]

use bytes::Bytes;
use kafka_wire::records::{BatchReader, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for verify_crc in [false, true] {
        let options = DecodeOptions { max_decompressed_bytes: 1 << 20, verify_crc };
        for batch in BatchReader::with_options(Bytes::copy_from_slice(data), options) {
            if let Ok(batch) = batch {
                let _ = batch.control_record();
            }
        }
    }
});
