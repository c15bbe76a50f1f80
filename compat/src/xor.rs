//! The XOR (Gorilla-style) float chunk codec, bit-compatible with Prometheus's
//! `tsdb/chunkenc/xor.go`.
//!
//! Layout (bits MSB-first): a big-endian `u16` sample count; sample 0 as a zigzag varint
//! timestamp and 64 raw value bits; sample 1 as a uvarint timestamp delta and an XOR-encoded
//! value; then per sample a delta-of-delta timestamp (`0`, `10`+14, `110`+17, `1110`+20,
//! `1111`+64 bits) and an XOR-encoded value (`0` same, `10` reuse window, `11` + 5-bit leading
//! zeros + 6-bit significant-bit count + bits).
//!
//! * [`decode_xor_into`] is the hot path used by block conversion: it appends to plain vectors.
//! * [`XorDecoder`] iterates samples one by one.
//! * [`XorEncoder`] produces exactly the bytes Prometheus's appender would, including its
//!   quirk of a trailing empty byte when the stream ends on a byte boundary after a byte write.

use crate::encoding::{uvarint, varint};
use crate::error::{Error, Result};

/// Most samples one XOR chunk can hold (the count is a `u16`).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// Reads bits MSB-first from a byte slice through a 64-bit buffer.
///
/// Invariant: every bit of `buf` is either zero or equal to the stream bit at that position,
/// so refills may OR overlapping bytes in again.
#[derive(Debug, Clone)]
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` not yet counted in `avail`.
    pos: usize,
    /// Pending bits, left-aligned.
    buf: u64,
    /// Number of valid bits at the top of `buf`.
    avail: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos, buf: 0, avail: 0 }
    }

    /// Tops `buf` up to at least 56 valid bits, or to the end of the data.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(word);
            // avail <= 56 here (refills only happen when fewer bits than a read needs remain).
            self.buf |= u64::from_be_bytes(a) >> self.avail;
            let take = (63 - self.avail) >> 3;
            self.pos += take as usize;
            self.avail += take << 3;
        } else {
            while self.avail <= 56 && self.pos < self.data.len() {
                self.buf |= u64::from(self.data[self.pos]) << (56 - self.avail);
                self.pos += 1;
                self.avail += 8;
            }
        }
    }

    /// Reads `n` bits, `1 <= n <= 56`.
    #[inline(always)]
    fn read(&mut self, n: u32) -> Option<u64> {
        if self.avail < n {
            self.refill();
            if self.avail < n {
                return None;
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.avail -= n;
        Some(v)
    }

    /// Reads `n` bits, `1 <= n <= 64`.
    #[inline(always)]
    fn read_wide(&mut self, n: u32) -> Option<u64> {
        if n <= 56 {
            self.read(n)
        } else {
            let hi = self.read(n - 32)?;
            let lo = self.read(32)?;
            Some((hi << 32) | lo)
        }
    }

    #[inline(always)]
    fn read_bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b != 0)
    }
}

/// Decoding state shared by [`XorDecoder`] and [`decode_xor_into`].
#[derive(Debug, Clone)]
struct State<'a> {
    br: BitReader<'a>,
    total: usize,
    read: usize,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u32,
    trailing: u32,
}

impl<'a> State<'a> {
    fn new(data: &'a [u8]) -> std::result::Result<Self, &'static str> {
        let [a, b, ..] = *data else {
            return Err("shorter than the 2-byte sample count");
        };
        Ok(State {
            br: BitReader::new(data, 2),
            total: usize::from(u16::from_be_bytes([a, b])),
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
        })
    }

    /// Decodes the next sample: timestamp and value bits.
    #[inline(always)]
    fn next_sample(&mut self) -> std::result::Result<(i64, u64), &'static str> {
        match self.read {
            0 => {
                // Sample 0 is byte-aligned: varint timestamp then 8 raw value bytes.
                let data = self.br.data;
                let rest = data.get(self.br.pos..).unwrap_or_default();
                let (t, n) = varint(rest).map_err(|_| "bad first timestamp")?;
                let vb = rest.get(n..n + 8).ok_or("truncated first value")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(vb);
                self.t = t;
                self.v = u64::from_be_bytes(a);
                self.br.pos += n + 8;
            }
            1 => {
                let rest = self.br.data.get(self.br.pos..).unwrap_or_default();
                let (d, n) = uvarint(rest).map_err(|_| "bad second timestamp delta")?;
                self.br.pos += n;
                self.t_delta = d;
                self.t = self.t.wrapping_add(d as i64);
                self.read_value()?;
            }
            _ => {
                let br = &mut self.br;
                if br.avail < 4 {
                    br.refill();
                }
                // Prefix `0`, `10`, `110`, `1110` or `1111`.
                let ones = (!br.buf).leading_zeros().min(4);
                let prefix_len = if ones == 4 { 4 } else { ones + 1 };
                if br.avail < prefix_len {
                    return Err("truncated timestamp");
                }
                br.buf <<= prefix_len;
                br.avail -= prefix_len;
                let dod: i64 = match ones {
                    0 => 0,
                    4 => br.read_wide(64).ok_or("truncated timestamp")? as i64,
                    _ => {
                        let sz = [0, 14, 17, 20][ones as usize];
                        let mut bits = br.read(sz).ok_or("truncated timestamp")?;
                        if bits > (1 << (sz - 1)) {
                            bits = bits.wrapping_sub(1 << sz);
                        }
                        bits as i64
                    }
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok((self.t, self.v))
    }

    #[inline(always)]
    fn read_value(&mut self) -> std::result::Result<(), &'static str> {
        const TRUNC: &str = "truncated value";
        let br = &mut self.br;
        if !br.read_bit().ok_or(TRUNC)? {
            return Ok(());
        }
        if br.read_bit().ok_or(TRUNC)? {
            let head = br.read(11).ok_or(TRUNC)?;
            let leading = (head >> 6) as u32;
            let mut mbits = (head & 0x3f) as u32;
            if mbits == 0 {
                mbits = 64;
            }
            if leading + mbits > 64 {
                return Err("leading zeros plus significant bits exceed 64");
            }
            self.leading = leading;
            self.trailing = 64 - leading - mbits;
        }
        let mbits = 64 - self.leading - self.trailing;
        let bits = br.read_wide(mbits).ok_or(TRUNC)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }
}

fn xor_err(reason: &str) -> Error {
    Error::Xor { reason: reason.to_owned() }
}

/// Iterates the samples of one XOR chunk as `(timestamp ms, value)`.
///
/// Values are bit-exact, including NaN payloads such as the staleness marker
/// `0x7ff0000000000002`. After an error the iterator ends.
#[derive(Debug, Clone)]
pub struct XorDecoder<'a> {
    state: State<'a>,
    failed: bool,
}

impl<'a> XorDecoder<'a> {
    /// Starts decoding `data`: the chunk bytes after the encoding byte.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        let state = State::new(data).map_err(xor_err)?;
        Ok(XorDecoder { state, failed: false })
    }

    /// The sample count stored in the chunk header.
    pub fn num_samples(&self) -> usize {
        self.state.total
    }
}

impl Iterator for XorDecoder<'_> {
    type Item = Result<(i64, f64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.state.read >= self.state.total {
            return None;
        }
        match self.state.next_sample() {
            Ok((t, v)) => Some(Ok((t, f64::from_bits(v)))),
            Err(reason) => {
                self.failed = true;
                Some(Err(xor_err(reason)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.state.total - self.state.read;
        (if self.failed { 0 } else { left }, Some(left))
    }
}

/// Decodes every sample of `data` (the chunk bytes after the encoding byte), appending
/// timestamps to `ts` and values to `vals`; returns the number appended.
///
/// On error nothing is appended (both vectors are truncated back).
pub fn decode_xor_into(data: &[u8], ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<usize> {
    decode_raw(data, ts, vals).map_err(xor_err)
}

/// [`decode_xor_into`] with a static reason, for callers that attach a file path.
pub(crate) fn decode_raw(
    data: &[u8],
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
) -> std::result::Result<usize, &'static str> {
    let mut st = State::new(data)?;
    let n = st.total;
    let (ts0, vals0) = (ts.len(), vals.len());
    ts.reserve(n);
    vals.reserve(n);
    for _ in 0..n {
        match st.next_sample() {
            Ok((t, v)) => {
                ts.push(t);
                vals.push(f64::from_bits(v));
            }
            Err(e) => {
                ts.truncate(ts0);
                vals.truncate(vals0);
                return Err(e);
            }
        }
    }
    Ok(n)
}

/// Go's `bstream` writer, reproduced exactly (including the empty trailing byte
/// `writeByte` leaves behind).
#[derive(Debug, Clone)]
struct BitWriter {
    stream: Vec<u8>,
    /// Free bits in the last byte of `stream`.
    count: u32,
}

impl BitWriter {
    fn write_bit(&mut self, bit: bool) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        if bit && let Some(last) = self.stream.last_mut() {
            *last |= 1 << (self.count - 1);
        }
        self.count -= 1;
    }

    fn write_byte(&mut self, byt: u8) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        if let Some(last) = self.stream.last_mut() {
            *last |= byt >> (8 - self.count);
        }
        // Go: `byt << count` on a byte, which is 0 when count == 8.
        self.stream.push(((u32::from(byt) << self.count) & 0xff) as u8);
    }

    fn write_bits(&mut self, u: u64, nbits: u32) {
        if nbits == 0 {
            return;
        }
        let mut u = u << (64 - nbits);
        let mut nbits = nbits;
        while nbits >= 8 {
            self.write_byte((u >> 56) as u8);
            u <<= 8;
            nbits -= 8;
        }
        while nbits > 0 {
            self.write_bit(u >> 63 == 1);
            u <<= 1;
            nbits -= 1;
        }
    }
}

/// Encodes float samples into an XOR chunk, byte-identical to Prometheus's `xorAppender`.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    bw: BitWriter,
    num: usize,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        XorEncoder {
            bw: BitWriter { stream: vec![0, 0], count: 0 },
            num: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Samples appended so far.
    pub fn num_samples(&self) -> usize {
        self.num
    }

    /// Whether the chunk holds [`MAX_SAMPLES`] and cannot take more.
    pub fn is_full(&self) -> bool {
        self.num >= MAX_SAMPLES
    }

    /// Current encoded size in bytes.
    pub fn len_bytes(&self) -> usize {
        self.bw.stream.len()
    }

    /// Appends a sample. Timestamps should increase (as in Prometheus, this is not checked).
    ///
    /// # Panics
    /// If the chunk is already full ([`Self::is_full`]); use [`Self::try_append`] to get an error.
    #[track_caller]
    pub fn append(&mut self, t: i64, v: f64) {
        assert!(!self.is_full(), "XOR chunk already holds {MAX_SAMPLES} samples");
        self.append_unchecked(t, v);
    }

    /// Appends a sample, or errors if the chunk already holds [`MAX_SAMPLES`].
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<()> {
        if self.is_full() {
            return Err(xor_err("chunk already holds 65535 samples"));
        }
        self.append_unchecked(t, v);
        Ok(())
    }

    fn append_unchecked(&mut self, t: i64, v: f64) {
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                let mut buf = Vec::with_capacity(10);
                crate::encoding::put_varint(&mut buf, t);
                for b in buf {
                    self.bw.write_byte(b);
                }
                self.bw.write_bits(v.to_bits(), 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let mut buf = Vec::with_capacity(10);
                crate::encoding::put_uvarint(&mut buf, t_delta);
                for b in buf {
                    self.bw.write_byte(b);
                }
                self.write_value(v);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                let bw = &mut self.bw;
                if dod == 0 {
                    bw.write_bit(false);
                } else if bit_range(dod, 14) {
                    bw.write_bits(0b10, 2);
                    bw.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    bw.write_bits(0b110, 3);
                    bw.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    bw.write_bits(0b1110, 4);
                    bw.write_bits(dod as u64, 20);
                } else {
                    bw.write_bits(0b1111, 4);
                    bw.write_bits(dod as u64, 64);
                }
                self.write_value(v);
            }
        }
        self.t = t;
        self.v = v;
        self.t_delta = t_delta;
        self.num += 1;
        let [hi, lo] = (self.num as u16).to_be_bytes();
        self.bw.stream[0] = hi;
        self.bw.stream[1] = lo;
    }

    fn write_value(&mut self, v: f64) {
        let delta = v.to_bits() ^ self.v.to_bits();
        let bw = &mut self.bw;
        if delta == 0 {
            bw.write_bit(false);
            return;
        }
        bw.write_bit(true);
        let new_leading = (delta.leading_zeros() as u8).min(31);
        let new_trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && new_leading >= self.leading && new_trailing >= self.trailing {
            bw.write_bit(false);
            bw.write_bits(delta >> self.trailing, 64 - u32::from(self.leading) - u32::from(self.trailing));
            return;
        }
        self.leading = new_leading;
        self.trailing = new_trailing;
        bw.write_bit(true);
        bw.write_bits(u64::from(new_leading), 5);
        let sigbits = 64 - u32::from(new_leading) - u32::from(new_trailing);
        // 64 significant bits are written as 0 (6 bits), restored by the reader.
        bw.write_bits(u64::from(sigbits), 6);
        bw.write_bits(delta >> new_trailing, sigbits);
    }

    /// The encoded chunk bytes (without the encoding byte of a segment record).
    pub fn finish(self) -> Vec<u8> {
        self.bw.stream
    }
}

/// Go's `bitRange`: whether `x` fits the `nbits` bucket of the delta-of-delta encoding.
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

#[cfg(test)]
mod tests;
