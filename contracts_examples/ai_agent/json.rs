//! Just enough JSON for a chat-completions exchange, without an allocator or recursion:
//! writing a request body (with string escaping) and reading `choices[0].message.content`
//! out of the answer (with string unescaping, `\uXXXX` and surrogate pairs included).
//!
//! Nested values that are skipped are stepped over by bracket counting, so a hostile body
//! cannot exhaust the stack; member names are compared as raw bytes (an escaped name is not
//! recognised); the first member with a name wins.

use phat_sdk::env;

/// Appends bytes to a fixed buffer (from the call arena).
pub struct Out {
    buf: &'static mut [u8],
    len: usize,
}

impl Out {
    pub fn new(buf: &'static mut [u8]) -> Self {
        Out { buf, len: 0 }
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => dst.copy_from_slice(bytes),
            None => env::trap_with("ai_agent: JSON buffer too small"),
        }
        self.len = end;
        self
    }

    /// `text` as the inside of a JSON string: `"` and `\` escaped, control characters as
    /// `\u00XX`; other bytes (UTF-8 included) as they are.
    pub fn escaped(&mut self, text: &[u8]) -> &mut Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &c in text {
            match c {
                b'"' => self.raw(b"\\\""),
                b'\\' => self.raw(b"\\\\"),
                b'\n' => self.raw(b"\\n"),
                b'\r' => self.raw(b"\\r"),
                b'\t' => self.raw(b"\\t"),
                0..=0x1f => self.raw(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]),
                _ => self.raw(&[c]),
            };
        }
        self
    }

    pub fn finish(self) -> &'static [u8] {
        let Out { buf, len } = self;
        &buf[..len]
    }
}

/// Position in a body being read.
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
                b'\\' => self.i += 2, // the escaped character may be a quote
                _ => self.i += 1,
            }
        }
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
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some(())
    }

    /// Inside an object (cursor before `{`): moves to the value of member `name`.
    fn member(&mut self, name: &[u8]) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return None;
        }
        loop {
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            if key == name {
                self.skip_whitespace();
                return Some(());
            }
            self.skip_value()?;
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Inside an array (cursor before `[`): moves to its first element.
    fn first_element(&mut self) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        self.skip_whitespace();
        if self.peek()? == b']' {
            return None;
        }
        Some(())
    }
}

/// `choices[0].message.content` of a chat-completions answer, unescaped into the call arena;
/// `None` when the body does not have that shape, the content is not a string, or it is not
/// valid UTF-8.
pub fn chat_content(body: &[u8]) -> Option<&'static [u8]> {
    let mut c = Cursor { s: body, i: 0 };
    c.member(b"choices")?;
    c.first_element()?;
    c.member(b"message")?;
    c.member(b"content")?;
    let raw = c.string()?;
    let text = unescape(raw)?;
    core::str::from_utf8(text).ok()?;
    Some(text)
}

fn hex4(digits: &[u8]) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    let mut value = 0u32;
    for &d in digits {
        value = value * 16 + char::from(d).to_digit(16)?;
    }
    Some(value)
}

/// A JSON string's content with its escapes resolved (never longer than the input).
fn unescape(raw: &[u8]) -> Option<&'static [u8]> {
    let out = env::alloc(raw.len());
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out[n] = c;
            n += 1;
            i += 1;
            continue;
        }
        let simple = match *raw.get(i + 1)? {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return None,
        };
        if let Some(byte) = simple {
            out[n] = byte;
            n += 1;
            i += 2;
            continue;
        }
        let mut code = hex4(raw.get(i + 2..i + 6)?)?;
        i += 6;
        if (0xd800..0xdc00).contains(&code) {
            // A high surrogate must be followed by `\u` and a low one.
            if raw.get(i..i + 2)? != b"\\u" {
                return None;
            }
            let low = hex4(raw.get(i + 2..i + 6)?)?;
            if !(0xdc00..0xe000).contains(&low) {
                return None;
            }
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            i += 6;
        }
        let ch = char::from_u32(code)?; // a lone low surrogate is not a character
        n += ch.encode_utf8(&mut out[n..]).len();
    }
    Some(&out[..n])
}
