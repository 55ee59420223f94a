//! A tiny JSON scanner: just enough to pull one top-level number out of a price feed body
//! such as `{"symbol": "ETH", "price": "123.45"}` or `{"price": 12345}` — no allocator, no
//! crates, no recursion (nested values are skipped by bracket counting, so a hostile body
//! cannot exhaust the stack).
//!
//! Deliberate limits: member names are compared as raw bytes (an escaped name such as
//! `"pr\u0069ce"` is not recognised), values that are skipped are not validated, and the
//! first `price` member wins.

/// Position in the body.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Consumes `c` after optional whitespace.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_whitespace();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A string's raw content between its quotes (escapes left as written).
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => {
                    let content = &self.s[start..self.i];
                    self.i += 1;
                    return Some(content);
                }
                // The escaped character can be a quote: step over it.
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
    }

    /// A bare scalar (number, `true`, `null` …): everything up to the next delimiter.
    fn scalar(&mut self) -> &'a [u8] {
        self.skip_whitespace();
        let start = self.i;
        while let Some(c) = self.peek() {
            if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// Steps over one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0u32;
                loop {
                    match self.peek()? {
                        // Brackets inside strings do not count.
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                if self.scalar().is_empty() {
                    return None;
                }
            }
        }
        Some(())
    }
}

/// The top-level `"price"` member of a JSON object — a number or a string holding one —
/// as an integer with `decimals` digits after the point. `None` when the body is not an
/// object, has no such member, or the value is not a non-negative decimal that fits a u128.
pub fn price(body: &[u8], decimals: i32) -> Option<u128> {
    let mut c = Cursor { s: body, i: 0 };
    if !c.eat(b'{') {
        return None;
    }
    loop {
        let name = c.string()?;
        if !c.eat(b':') {
            return None;
        }
        c.skip_whitespace();
        if name == b"price" {
            let text = if c.peek() == Some(b'"') { c.string()? } else { c.scalar() };
            return to_fixed(text, decimals);
        }
        c.skip_value()?;
        if !c.eat(b',') {
            return None;
        }
    }
}

/// `digits [. digits] [(e|E) [+|-] digits]` (no sign: a price is not negative) → the value
/// × 10^decimals, truncated toward zero when the text has more precision than that.
pub fn to_fixed(text: &[u8], decimals: i32) -> Option<u128> {
    let (mantissa, exponent) = match text.iter().position(|&c| c == b'e' || c == b'E') {
        Some(at) => (&text[..at], exponent(&text[at + 1..])?),
        None => (text, 0),
    };
    let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    let has_point = int.len() != mantissa.len();
    if int.is_empty() || (has_point && frac.is_empty()) {
        return None;
    }
    if !int.iter().all(u8::is_ascii_digit) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // The digits as written are worth 10^scale units of the result.
    let mut scale = decimals + exponent;
    let mut value: u128 = 0;
    // A negative scale drops that many trailing integer digits (truncation); dividing
    // instead would link u128 division into the contract.
    let dropped = if scale < 0 { scale.unsigned_abs() as usize } else { 0 };
    for &d in &int[..int.len().saturating_sub(dropped)] {
        value = value.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    for &d in frac {
        if scale <= 0 {
            break; // finer than the reported precision: truncated
        }
        value = value.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        scale -= 1;
    }
    for _ in 0..scale {
        value = value.checked_mul(10)?;
    }
    Some(value)
}

/// An exponent of at most three digits, so `decimals + exponent` cannot overflow.
fn exponent(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
    Some(if negative { -value } else { value })
}
