//! The four Kafka codecs in pure Rust, each decompressor bounded by an output cap.
//!
//! | codec  | crate      | encode                 | decode                               |
//! |--------|------------|------------------------|--------------------------------------|
//! | gzip   | `flate2` (miniz_oxide backend) | gzip member  | one or more gzip members      |
//! | snappy | `snap`     | xerial framing (Java)  | xerial framing or a raw snappy block |
//! | lz4    | `lz4_flex` | lz4 frame format       | lz4 frame format                     |
//! | zstd   | `ruzstd`   | zstd frame ("fastest") | any zstd frame                       |
//!
//! The cap turns a zip bomb into [`RecordsError::DecompressedTooLarge`] instead of
//! an out-of-memory abort.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use super::attributes::Compression;
use super::RecordsError;

/// Java's `SnappyOutputStream` header: magic, version 1, compatible version 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Java's xerial block size (32 KiB of uncompressed input per block).
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Compresses `input` with `codec`, appending to `out`.
pub fn compress(codec: Compression, input: &[u8], out: &mut BytesMut) -> Result<(), RecordsError> {
    let io_error = |e: std::io::Error| RecordsError::Compress {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::fast());
            encoder.write_all(input).map_err(io_error)?;
            encoder.finish().map_err(io_error)?;
        }
        Compression::Snappy => compress_xerial(input, out)?,
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(out.writer());
            encoder.write_all(input).map_err(io_error)?;
            encoder.finish().map_err(|e| RecordsError::Compress {
                codec,
                reason: e.to_string(),
            })?;
        }
        Compression::Zstd => {
            ruzstd::encoding::compress(
                input,
                out.writer(),
                ruzstd::encoding::CompressionLevel::Fastest,
            );
        }
    }
    Ok(())
}

fn compress_xerial(input: &[u8], out: &mut BytesMut) -> Result<(), RecordsError> {
    out.put_slice(&XERIAL_MAGIC);
    out.put_i32(1);
    out.put_i32(1);
    let mut encoder = snap::raw::Encoder::new();
    let mut scratch = vec![0; snap::raw::max_compress_len(XERIAL_BLOCK_SIZE)];
    for block in input.chunks(XERIAL_BLOCK_SIZE) {
        let written =
            encoder
                .compress(block, &mut scratch)
                .map_err(|e| RecordsError::Compress {
                    codec: Compression::Snappy,
                    reason: e.to_string(),
                })?;
        out.put_i32(written as i32);
        out.put_slice(&scratch[..written]);
    }
    Ok(())
}

/// Decompresses a records section. `Compression::None` returns the input as is
/// (zero-copy); every other codec stops at `cap` output bytes.
pub fn decompress(codec: Compression, input: Bytes, cap: usize) -> Result<Bytes, RecordsError> {
    let decompressed = match codec {
        Compression::None => return Ok(input),
        Compression::Gzip => {
            read_capped(flate2::read::MultiGzDecoder::new(&input[..]), codec, cap)?
        }
        Compression::Snappy => decompress_snappy(&input, cap)?,
        Compression::Lz4 => {
            read_capped(lz4_flex::frame::FrameDecoder::new(&input[..]), codec, cap)?
        }
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(&input[..]).map_err(|e| {
                RecordsError::Decompress {
                    codec,
                    reason: e.to_string(),
                }
            })?;
            read_capped(decoder, codec, cap)?
        }
    };
    Ok(Bytes::from(decompressed))
}

fn read_capped(reader: impl Read, codec: Compression, cap: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| RecordsError::Decompress {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > cap {
        return Err(RecordsError::DecompressedTooLarge { codec, cap });
    }
    Ok(out)
}

fn decompress_snappy(input: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        decompress_xerial(&input[XERIAL_HEADER_LEN..], cap)
    } else {
        let mut out = Vec::new();
        snappy_block_into(input, &mut out, cap)?;
        Ok(out)
    }
}

fn decompress_xerial(mut blocks: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    while !blocks.is_empty() {
        let Some((len_bytes, rest)) = blocks.split_first_chunk::<4>() else {
            return Err(snappy_error("truncated xerial block length".into()));
        };
        let len = i32::from_be_bytes(*len_bytes);
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= rest.len())
            .ok_or_else(|| {
                snappy_error(format!(
                    "xerial block length {len} exceeds the {} bytes left",
                    rest.len()
                ))
            })?;
        snappy_block_into(&rest[..len], &mut out, cap)?;
        blocks = &rest[len..];
    }
    Ok(out)
}

/// Decompresses one raw snappy block onto `out`, refusing to grow past `cap`.
fn snappy_block_into(block: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), RecordsError> {
    let len = snap::raw::decompress_len(block).map_err(|e| snappy_error(e.to_string()))?;
    if out.len().saturating_add(len) > cap {
        return Err(RecordsError::DecompressedTooLarge {
            codec: Compression::Snappy,
            cap,
        });
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| snappy_error(e.to_string()))?;
    Ok(())
}

fn snappy_error(reason: String) -> RecordsError {
    RecordsError::Decompress {
        codec: Compression::Snappy,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(codec: Compression, input: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        compress(codec, input, &mut out).unwrap();
        decompress(codec, out.freeze(), 1 << 24).unwrap()
    }

    #[test]
    fn xerial_header_matches_java() {
        let mut out = BytesMut::new();
        compress(Compression::Snappy, b"hello", &mut out).unwrap();
        assert_eq!(
            &out[..16],
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
        );
    }

    #[test]
    fn raw_snappy_is_accepted_too() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"raw snappy from old librdkafka")
            .unwrap();
        let out = decompress(Compression::Snappy, Bytes::from(raw), 1024).unwrap();
        assert_eq!(&out[..], b"raw snappy from old librdkafka");
    }

    #[test]
    fn zip_bombs_hit_the_cap() {
        let zeros = vec![0u8; 1 << 20];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut out = BytesMut::new();
            compress(codec, &zeros, &mut out).unwrap();
            let err = decompress(codec, out.freeze(), 64 * 1024).unwrap_err();
            assert_eq!(
                err,
                RecordsError::DecompressedTooLarge {
                    codec,
                    cap: 64 * 1024
                },
                "{codec}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let result = decompress(
                codec,
                Bytes::from_static(b"\xff\xfenot compressed at all"),
                1024,
            );
            assert!(result.is_err(), "{codec} accepted garbage");
        }
    }

    proptest! {
        #[test]
        fn every_codec_round_trips(input in proptest::collection::vec(any::<u8>(), 0..20_000), codec in 0u8..5) {
            let codec = Compression::from_id(codec).unwrap();
            prop_assert_eq!(&round_trip(codec, &input)[..], &input[..]);
        }
    }
}
