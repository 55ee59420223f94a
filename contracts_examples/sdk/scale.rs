//! A minimal SCALE codec: just the types the example contracts exchange.
//!
//! Decoding is zero-copy over a byte slice and returns `None` on malformed input, so the
//! caller decides what a decode failure means (for call input it is ink!'s
//! `LangError::CouldNotReadInput`). Encoding writes into a caller-supplied buffer and traps
//! when the buffer is too small — the contracts size their buffers for their own types.
//!
//! Encodings (parity-scale-codec): integers little-endian; `bool` one byte 0/1; `[u8; N]`
//! raw; `Vec<T>` = compact length ‖ items; `Option<T>` = 0 | 1 ‖ T; `Result<T, E>` =
//! 0 ‖ T | 1 ‖ E; `()` nothing; tuples concatenated; fieldless enums one index byte.

use crate::env::trap_with;

// --- decoding ------------------------------------------------------------------------------

/// A cursor over SCALE bytes.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub const fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.rest.get(..n)?;
        self.rest = self.rest.get(n..)?;
        Some(head)
    }

    pub fn take_array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Some(out)
    }

    pub fn read<T: Decode<'a>>(&mut self) -> Option<T> {
        T::decode(self)
    }

    /// A compact-encoded `u32` (lengths, counts). Non-canonical encodings are refused, as
    /// parity-scale-codec does, so two encodings of one value never both decode.
    pub fn compact_u32(&mut self) -> Option<u32> {
        let first = *self.rest.first()?;
        match first & 0b11 {
            0b00 => {
                self.take(1)?;
                Some(u32::from(first >> 2))
            }
            0b01 => {
                let v = u32::from(u16::from_le_bytes(self.take_array::<2>()?)) >> 2;
                (v > 0b0011_1111).then_some(v)
            }
            0b10 => {
                let v = u32::from_le_bytes(self.take_array::<4>()?) >> 2;
                (v > 0x3fff).then_some(v)
            }
            _ => {
                // Big-integer mode: only the 4-byte form can hold a u32 that needed it.
                if first != 0b11 {
                    return None;
                }
                self.take(1)?;
                let v = u32::from_le_bytes(self.take_array::<4>()?);
                (v > 0x3fff_ffff).then_some(v)
            }
        }
    }
}

/// A type that can be read from SCALE bytes (possibly borrowing them).
pub trait Decode<'a>: Sized {
    fn decode(r: &mut Reader<'a>) -> Option<Self>;
}

impl<'a> Decode<'a> for () {
    fn decode(_: &mut Reader<'a>) -> Option<Self> {
        Some(())
    }
}

impl<'a> Decode<'a> for bool {
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        match r.take(1)?[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

macro_rules! decode_int {
    ($($t:ty),*) => {$(
        impl<'a> Decode<'a> for $t {
            fn decode(r: &mut Reader<'a>) -> Option<Self> {
                Some(<$t>::from_le_bytes(r.take_array()?))
            }
        }
    )*};
}
decode_int!(u8, u16, u32, u64, u128);

impl<'a, const N: usize> Decode<'a> for [u8; N] {
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        r.take_array()
    }
}

/// `Vec<u8>` decodes to a borrowed slice of the input: no allocator needed.
impl<'a> Decode<'a> for &'a [u8] {
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        let len = r.compact_u32()? as usize;
        r.take(len)
    }
}

impl<'a, T: Decode<'a>> Decode<'a> for Option<T> {
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        match r.take(1)?[0] {
            0 => Some(None),
            1 => Some(Some(T::decode(r)?)),
            _ => None,
        }
    }
}

impl<'a, T: Decode<'a>, E: Decode<'a>> Decode<'a> for Result<T, E> {
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        match r.take(1)?[0] {
            0 => Some(Ok(T::decode(r)?)),
            1 => Some(Err(E::decode(r)?)),
            _ => None,
        }
    }
}

impl<'a, A: Decode<'a>, B: Decode<'a>> Decode<'a> for (A, B) {
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        Some((A::decode(r)?, B::decode(r)?))
    }
}

// --- encoding ------------------------------------------------------------------------------

/// Appends SCALE bytes to a fixed buffer.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw bytes (no length prefix).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => dst.copy_from_slice(bytes),
            None => trap_with("phat_sdk: SCALE output buffer too small"),
        }
        self.len = end;
        self
    }

    pub fn compact_u32(&mut self, v: u32) -> &mut Self {
        if v < 1 << 6 {
            self.bytes(&[(v as u8) << 2])
        } else if v < 1 << 14 {
            self.bytes(&(((v as u16) << 2) | 0b01).to_le_bytes())
        } else if v < 1 << 30 {
            self.bytes(&((v << 2) | 0b10).to_le_bytes())
        } else {
            self.bytes(&[0b11]).bytes(&v.to_le_bytes())
        }
    }

    pub fn put<T: Encode + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.encode_to(self);
        self
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Gives up the writer, keeping the written bytes for as long as the buffer lives.
    pub fn finish(self) -> &'a [u8] {
        let Writer { buf, len } = self;
        &buf[..len]
    }
}

/// A type that can be written as SCALE bytes.
pub trait Encode {
    fn encode_to(&self, w: &mut Writer);
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode_to(&self, w: &mut Writer) {
        (**self).encode_to(w)
    }
}

impl Encode for () {
    fn encode_to(&self, _: &mut Writer) {}
}

impl Encode for bool {
    fn encode_to(&self, w: &mut Writer) {
        w.bytes(&[*self as u8]);
    }
}

macro_rules! encode_int {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode_to(&self, w: &mut Writer) {
                w.bytes(&self.to_le_bytes());
            }
        }
    )*};
}
encode_int!(u8, u16, u32, u64, u128);

impl<const N: usize> Encode for [u8; N] {
    fn encode_to(&self, w: &mut Writer) {
        w.bytes(self);
    }
}

/// `Vec<u8>` / `&[u8]` on the wire: compact length ‖ bytes.
pub struct Bytes<'a>(pub &'a [u8]);

impl Encode for Bytes<'_> {
    fn encode_to(&self, w: &mut Writer) {
        w.compact_u32(self.0.len() as u32).bytes(self.0);
    }
}

/// Bytes that are already SCALE-encoded, written verbatim.
pub struct Raw<'a>(pub &'a [u8]);

impl Encode for Raw<'_> {
    fn encode_to(&self, w: &mut Writer) {
        w.bytes(self.0);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            None => {
                w.bytes(&[0]);
            }
            Some(v) => {
                w.bytes(&[1]).put(v);
            }
        }
    }
}

impl<T: Encode, E: Encode> Encode for Result<T, E> {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            Ok(v) => {
                w.bytes(&[0]).put(v);
            }
            Err(e) => {
                w.bytes(&[1]).put(e);
            }
        }
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&self.0).put(&self.1);
    }
}
