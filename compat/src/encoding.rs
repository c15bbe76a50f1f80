//! Byte-level decoding helpers shared by the index, chunk and tombstone readers: Go-compatible
//! varints, big-endian integers and CRC32C verification.

use crate::error::{Error, Result};

type DResult<T> = std::result::Result<T, DecErr>;

/// Why a read from a [`Dec`] failed; callers turn it into an [`Error::Corrupt`] with context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecErr {
    /// Fewer bytes remain than the value needs.
    Truncated,
    /// A varint longer than 10 bytes or larger than its target type.
    Overflow,
}

impl std::fmt::Display for DecErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecErr::Truncated => f.write_str("unexpected end of data"),
            DecErr::Overflow => f.write_str("varint overflows"),
        }
    }
}

/// A cursor over a byte slice (Prometheus's `encoding.Decbuf`).
#[derive(Debug, Clone)]
pub(crate) struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Dec { b, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> DResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecErr::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(DecErr::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn be32(&mut self) -> DResult<u32> {
        let s = self.bytes(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub(crate) fn be64(&mut self) -> DResult<u64> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    /// LEB128 unsigned varint (Go `binary.Uvarint`).
    pub(crate) fn uvarint(&mut self) -> DResult<u64> {
        let (v, n) = uvarint(&self.b[self.pos..])?;
        self.pos += n;
        Ok(v)
    }

    /// A uvarint that must fit in 32 bits (Go `Decbuf.Uvarint32`).
    pub(crate) fn uvarint32(&mut self) -> DResult<u32> {
        u32::try_from(self.uvarint()?).map_err(|_| DecErr::Overflow)
    }

    /// Zigzag signed varint (Go `binary.Varint`).
    pub(crate) fn varint(&mut self) -> DResult<i64> {
        let (v, n) = varint(&self.b[self.pos..])?;
        self.pos += n;
        Ok(v)
    }

    /// A uvarint length followed by that many bytes.
    pub(crate) fn uvarint_bytes(&mut self) -> DResult<&'a [u8]> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecErr::Overflow)?;
        self.bytes(n)
    }
}

/// Decodes a Go `binary.Uvarint` from the start of `b`: value and bytes consumed.
#[inline]
pub(crate) fn uvarint(b: &[u8]) -> DResult<(u64, usize)> {
    let mut x: u64 = 0;
    let mut s: u32 = 0;
    for (i, &byte) in b.iter().enumerate() {
        if i == 10 {
            return Err(DecErr::Overflow);
        }
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return Err(DecErr::Overflow);
            }
            return Ok((x | (u64::from(byte) << s), i + 1));
        }
        x |= u64::from(byte & 0x7f) << s;
        s += 7;
    }
    Err(DecErr::Truncated)
}

/// Decodes a Go `binary.Varint` (zigzag) from the start of `b`.
#[inline]
pub(crate) fn varint(b: &[u8]) -> DResult<(i64, usize)> {
    let (ux, n) = uvarint(b)?;
    let x = (ux >> 1) as i64;
    Ok((if ux & 1 != 0 { !x } else { x }, n))
}

/// Appends `v` as a Go `binary.PutUvarint`.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as a Go `binary.PutVarint` (zigzag).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let ux = ((v as u64) << 1) ^ ((v >> 63) as u64);
    put_uvarint(out, ux);
}

/// CRC32C (Castagnoli) of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Verifies that `data` hashes to `stored`, else [`Error::Checksum`] naming `path` and `what`.
pub(crate) fn check_crc(path: &str, what: impl FnOnce() -> String, data: &[u8], stored: u32) -> Result<()> {
    let actual = crc32c(data);
    if actual == stored {
        Ok(())
    } else {
        Err(Error::Checksum { path: path.to_owned(), what: what(), expected: stored, actual })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_match_go() {
        for v in [0i64, 1, -1, 63, -64, 64, 1 << 40, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(varint(&b), Ok((v, b.len())));
        }
        for v in [0u64, 127, 128, 300, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(uvarint(&b), Ok((v, b.len())));
        }
        // Go: PutVarint(-1) = 0x01, PutUvarint(300) = 0xac 0x02.
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0x01, 0xac, 0x02]);
    }

    #[test]
    fn bad_varints_are_errors() {
        assert_eq!(uvarint(&[0x80, 0x80]), Err(DecErr::Truncated));
        assert_eq!(uvarint(&[]), Err(DecErr::Truncated));
        assert_eq!(uvarint(&[0xff; 11]), Err(DecErr::Overflow));
        assert_eq!(
            uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(DecErr::Overflow)
        );
        let mut d = Dec::new(&[0x80, 0x80, 0x80, 0x80, 0x10]);
        assert_eq!(d.uvarint32(), Err(DecErr::Overflow));
    }
}
