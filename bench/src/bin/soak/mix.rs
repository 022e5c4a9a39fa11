//! The requests a soak client sends, and the one reply each must get.

use std::str::FromStr;

/// Kinds of request, each with a known reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `HELLO` -> `MSG Hello from <name>`.
    Hello,
    /// `ECHO <token>` -> `MSG <token>`.
    Echo,
    /// A line past the length limit -> `ERR line too long (max N bytes)`.
    TooLong,
    /// A line that is not UTF-8 -> `ERR invalid UTF-8`.
    BadUtf8,
    /// `PANIC`, whose handler panics -> `ERR plugin testkit failed: ...`.
    Panic,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Hello,
        Kind::Echo,
        Kind::TooLong,
        Kind::BadUtf8,
        Kind::Panic,
    ];

    /// How the kind is named in failure reports.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Hello => "HELLO",
            Kind::Echo => "ECHO",
            Kind::TooLong => "an over-long line",
            Kind::BadUtf8 => "an invalid UTF-8 line",
            Kind::Panic => "PANIC",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::Echo => "echo",
            Kind::TooLong => "long",
            Kind::BadUtf8 => "utf8",
            Kind::Panic => "panic",
        }
    }
}

/// Relative weights of the kinds, parsed from `hello=30,echo=40,...`.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    weights: [u32; 5],
    total: u32,
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = [0u32; 5];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not kind=weight"))?;
            let index = Kind::ALL
                .iter()
                .position(|k| k.key() == key.trim())
                .ok_or_else(|| format!("unknown kind `{key}` (hello, echo, long, utf8, panic)"))?;
            weights[index] = value
                .trim()
                .parse()
                .map_err(|_| format!("weight of `{key}` is not a whole number"))?;
        }
        let total = weights.iter().try_fold(0u32, |a, &w| a.checked_add(w));
        match total {
            Some(total) if total > 0 => Ok(Mix { weights, total }),
            _ => Err("weights must add up to between 1 and 2^32".to_owned()),
        }
    }
}

impl Mix {
    pub fn pick(&self, rng: &mut Rng) -> Kind {
        let mut roll = rng.below(self.total);
        for (kind, &w) in Kind::ALL.iter().zip(&self.weights) {
            if roll < w {
                return *kind;
            }
            roll -= w;
        }
        Kind::Hello
    }
}

/// xorshift64*: tiny and fast; the soak needs variety, not secrecy.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 spreads nearby seeds (client ids) apart and avoids 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough value in `0..n` (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// Longest ECHO token; kept inline in [`Expected`] so queuing a request
/// allocates nothing.
const MAX_TOKEN: usize = 32;

const TOKEN_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

/// Lines that are not UTF-8 in different ways: a stray byte, a truncated
/// sequence, an encoded surrogate, an overlong encoding.
const BAD_UTF8: [&[u8]; 5] = [
    b"ECHO \xff",
    b"\xc3\x28",
    b"HELLO \xed\xa0\x80",
    b"ECHO abc\xe2\x82",
    b"ECHO \xc0\xaf",
];

/// The reply a request must get.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    pub kind: Kind,
    token: [u8; MAX_TOKEN],
    token_len: u8,
}

/// How a reply was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    TooLong,
    BadUtf8,
    PluginFailed,
    Unexpected,
}

/// Writes requests and judges replies for one host configuration.
pub struct Requests {
    pub mix: Mix,
    max_line: usize,
    too_long_reply: Vec<u8>,
}

impl Requests {
    pub fn new(mix: Mix, max_line: usize) -> Self {
        Requests {
            mix,
            max_line,
            too_long_reply: format!("ERR line too long (max {max_line} bytes)").into_bytes(),
        }
    }

    /// Appends a request of `kind` (with its newline) to `out`.
    pub fn write(&self, kind: Kind, rng: &mut Rng, out: &mut Vec<u8>) -> Expected {
        let mut expected = Expected {
            kind,
            token: [0; MAX_TOKEN],
            token_len: 0,
        };
        match kind {
            Kind::Hello => out.extend_from_slice(b"HELLO"),
            Kind::Echo => {
                let len = 1 + rng.below(MAX_TOKEN as u32) as usize;
                for slot in &mut expected.token[..len] {
                    *slot = TOKEN_CHARS[rng.below(TOKEN_CHARS.len() as u32) as usize];
                }
                expected.token_len = len as u8;
                out.extend_from_slice(b"ECHO ");
                out.extend_from_slice(&expected.token[..len]);
            }
            Kind::TooLong => {
                // Between just over the limit and twice it, so the cut
                // falls at varying places in the host's reads. It starts
                // like a valid command in case the host wrongly runs it.
                let len = self.max_line + 1 + rng.below(self.max_line.max(1) as u32) as usize;
                out.extend_from_slice(b"ECHO ");
                out.resize(out.len() + len.saturating_sub(5), b'x');
            }
            Kind::BadUtf8 => {
                out.extend_from_slice(BAD_UTF8[rng.below(BAD_UTF8.len() as u32) as usize]);
            }
            Kind::Panic => out.extend_from_slice(b"PANIC"),
        }
        out.push(b'\n');
        expected
    }

    pub fn check(&self, expected: &Expected, line: &[u8]) -> Verdict {
        let good = match expected.kind {
            Kind::Hello => line.starts_with(b"MSG Hello from "),
            Kind::Echo => line
                .strip_prefix(b"MSG ")
                .is_some_and(|t| t == &expected.token[..usize::from(expected.token_len)]),
            Kind::TooLong => line == self.too_long_reply.as_slice(),
            Kind::BadUtf8 => line == b"ERR invalid UTF-8",
            Kind::Panic => line.starts_with(b"ERR plugin testkit failed: "),
        };
        if !good {
            return Verdict::Unexpected;
        }
        match expected.kind {
            Kind::Hello | Kind::Echo => Verdict::Ok,
            Kind::TooLong => Verdict::TooLong,
            Kind::BadUtf8 => Verdict::BadUtf8,
            Kind::Panic => Verdict::PluginFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(requests: &Requests, kind: Kind, seed: u64) -> (Vec<u8>, Expected) {
        let mut out = Vec::new();
        let exp = requests.write(kind, &mut Rng::new(seed), &mut out);
        (out, exp)
    }

    #[test]
    fn echo_round_trip() {
        let r = Requests::new("echo=1".parse().unwrap(), 8192);
        let (line, exp) = request(&r, Kind::Echo, 7);
        let text = std::str::from_utf8(&line).unwrap();
        let token = text.strip_prefix("ECHO ").unwrap().trim_end();
        assert_eq!(
            r.check(&exp, format!("MSG {token}").as_bytes()),
            Verdict::Ok
        );
        assert_eq!(r.check(&exp, b"MSG other"), Verdict::Unexpected);
    }

    #[test]
    fn too_long_exceeds_limit() {
        let r = Requests::new("long=1".parse().unwrap(), 100);
        for seed in 0..50 {
            let (line, exp) = request(&r, Kind::TooLong, seed);
            assert!(line.len() > 101 && line.len() <= 202, "{}", line.len());
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(
                r.check(&exp, b"ERR line too long (max 100 bytes)"),
                Verdict::TooLong
            );
        }
    }

    #[test]
    fn bad_utf8_is_bad() {
        for line in BAD_UTF8 {
            assert!(std::str::from_utf8(line).is_err());
        }
    }

    #[test]
    fn mix_parsing_and_picking() {
        assert!("nope=1".parse::<Mix>().is_err());
        assert!("hello=0".parse::<Mix>().is_err());
        let mix: Mix = "panic=1".parse().unwrap();
        let mut rng = Rng::new(3);
        assert!((0..100).all(|_| mix.pick(&mut rng) == Kind::Panic));
        let mix: Mix = "hello=1,echo=1".parse().unwrap();
        let picks: Vec<Kind> = (0..200).map(|_| mix.pick(&mut rng)).collect();
        assert!(picks.contains(&Kind::Hello) && picks.contains(&Kind::Echo));
    }
}
