//! Zigzag varints as the record batch v2 format uses them.
//!
//! `varint` is a zigzag-encoded i32 (at most 5 bytes), `varlong` a zigzag-encoded
//! i64 (at most 10 bytes). Record lengths, offset deltas, key/value/header lengths
//! are varints; the timestamp delta is a **varlong** (see shared/PITFALLS.md: a
//! client that reads it as a varint misaligns every later record).

use bytes::BufMut;

use super::RecordsError;

/// Largest encoding of a varint (i32) in bytes.
pub const MAX_VARINT_LEN: usize = 5;
/// Largest encoding of a varlong (i64) in bytes.
pub const MAX_VARLONG_LEN: usize = 10;

/// Zigzag-encodes an i64 so small negative numbers stay short.
#[inline]
pub fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Reverses [`zigzag64`].
#[inline]
pub fn unzigzag64(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Number of bytes [`put_varlong`] writes for `value`.
#[inline]
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

/// Number of bytes [`put_varint`] writes for `value`.
#[inline]
pub fn varint_len(value: i32) -> usize {
    unsigned_len(zigzag64(value as i64))
}

/// Number of bytes an unsigned LEB128 `value` takes.
#[inline]
pub fn unsigned_len(value: u64) -> usize {
    // Indexed by leading zeros: 7 payload bits per byte, zero takes one byte.
    const LEN_BY_LEADING_ZEROS: [u8; 65] = {
        let mut table = [1u8; 65];
        let mut zeros = 0;
        while zeros < 64 {
            table[zeros] = (64 - zeros).div_ceil(7) as u8;
            zeros += 1;
        }
        table
    };
    LEN_BY_LEADING_ZEROS[value.leading_zeros() as usize] as usize
}

/// Writes `value` as a zigzag varint.
#[inline]
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_unsigned(buf, zigzag64(value as i64));
}

/// Writes `value` as a zigzag varlong.
#[inline]
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned(buf, zigzag64(value));
}

/// Writes an unsigned LEB128 value (used by both varints and the flexible-version
/// unsigned varints).
#[inline]
pub fn put_unsigned(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes an unsigned LEB128 value into `out` at `*len` (no capacity checks
/// per byte: the caller sized `out`).
#[inline]
pub fn write_unsigned(out: &mut [u8], len: &mut usize, mut value: u64) {
    while value >= 0x80 {
        out[*len] = (value as u8) | 0x80;
        *len += 1;
        value >>= 7;
    }
    out[*len] = value as u8;
    *len += 1;
}

/// Reads a zigzag varint from `input` at `*pos`, advancing `*pos`.
#[inline]
pub fn get_varint(input: &[u8], pos: &mut usize) -> Result<i32, RecordsError> {
    let raw = get_unsigned(input, pos, MAX_VARINT_LEN)?;
    let value = unzigzag64(raw);
    i32::try_from(value).map_err(|_| RecordsError::VarintOverflow { at: *pos })
}

/// Reads a zigzag varlong from `input` at `*pos`, advancing `*pos`.
#[inline]
pub fn get_varlong(input: &[u8], pos: &mut usize) -> Result<i64, RecordsError> {
    get_unsigned(input, pos, MAX_VARLONG_LEN).map(unzigzag64)
}

#[inline]
fn get_unsigned(input: &[u8], pos: &mut usize, max_len: usize) -> Result<u64, RecordsError> {
    // Fast path: most lengths and deltas fit one byte.
    if let Some(&byte) = input.get(*pos) {
        if byte < 0x80 {
            *pos += 1;
            return Ok(u64::from(byte));
        }
    }
    let mut value: u64 = 0;
    for index in 0..max_len {
        let Some(&byte) = input.get(*pos + index) else {
            return Err(RecordsError::Truncated {
                needed: *pos + index + 1,
                available: input.len(),
            });
        };
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *pos += index + 1;
            return Ok(value);
        }
    }
    Err(RecordsError::VarintOverflow { at: *pos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zigzag_matches_protocol_guide_examples() {
        // From the protobuf/Kafka zigzag table: 0→0, -1→1, 1→2, -2→3.
        assert_eq!(zigzag64(0), 0);
        assert_eq!(zigzag64(-1), 1);
        assert_eq!(zigzag64(1), 2);
        assert_eq!(zigzag64(-2), 3);
        assert_eq!(zigzag64(i64::MIN), u64::MAX);
    }

    #[test]
    fn known_encodings() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0xd8, 0x04]);
        buf.clear();
        put_varint(&mut buf, -1);
        assert_eq!(buf, [0x01]);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let input = [0xff; 6];
        let mut pos = 0;
        assert!(matches!(
            get_varint(&input, &mut pos),
            Err(RecordsError::VarintOverflow { .. })
        ));
    }

    #[test]
    fn varint_out_of_i32_range_is_an_error() {
        let mut buf = Vec::new();
        put_varlong(&mut buf, i64::from(i32::MAX) + 1);
        let mut pos = 0;
        assert!(get_varint(&buf, &mut pos).is_err());
    }

    #[test]
    fn truncated_varint_is_an_error() {
        let mut pos = 0;
        assert!(matches!(
            get_varlong(&[0x80, 0x80], &mut pos),
            Err(RecordsError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn varint_round_trips(value: i32) {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            prop_assert_eq!(buf.len(), varint_len(value));
            let mut pos = 0;
            prop_assert_eq!(get_varint(&buf, &mut pos).unwrap(), value);
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn varlong_round_trips(value: i64) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, value);
            prop_assert_eq!(buf.len(), varlong_len(value));
            let mut pos = 0;
            prop_assert_eq!(get_varlong(&buf, &mut pos).unwrap(), value);
        }
    }
}
