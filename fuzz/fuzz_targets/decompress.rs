//! Every decompressor with its output cap: first byte picks the codec.
#![no_main]

use bytes::Bytes;
use kafka_wire::records::compression::decompress;
use kafka_wire::records::Compression;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let codec = Compression::ALL[usize::from(selector) % Compression::ALL.len()];
    if let Ok(out) = decompress(codec, Bytes::copy_from_slice(input), 1 << 20) {
        assert!(out.len() <= 1 << 20 || codec == Compression::None);
    }
});
