//! Arbitrary first bytes of a connection through the PROXY header parser
//! (`host::proxy_header::parse`), whole and cut into reads.
//!
//! The first input byte picks the mode and how the rest is cut. Invariants:
//! nothing panics; a header is never longer than the input, nor than its
//! version allows; bytes past a header do not change it; an incomplete
//! answer never comes with more bytes than a header may have; and reading
//! the input piece by piece, the first answer that is not "incomplete" is
//! the answer for the whole input, so a header split over reads is taken
//! or refused exactly as one that arrives at once.

#![no_main]

use host::proxy_header::{Mode, Parsed, V1_MAX, V2_MAX, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let mode = [Mode::V1, Mode::V2, Mode::Any][usize::from(pick % 3)];
    let chunk = usize::from(pick / 3 % 61) + 1;

    let whole = parse(mode, data);
    match &whole {
        Parsed::Header { length, .. } => {
            assert!(*length <= data.len(), "{whole:?} of {} bytes", data.len());
            let limit = if data.first() == Some(&b'P') {
                V1_MAX
            } else {
                V2_MAX
            };
            assert!(*length <= limit, "{whole:?}");
            assert_eq!(
                parse(mode, &data[..*length]),
                whole,
                "cut at the header's end"
            );
        }
        Parsed::Incomplete => assert!(data.len() < V2_MAX, "incomplete at {}", data.len()),
        Parsed::Invalid(_) => {}
    }
    if data.first() == Some(&b'P') && whole == Parsed::Incomplete {
        assert!(data.len() < V1_MAX, "v1 incomplete at {}", data.len());
    }

    let mut end = 0;
    let first = loop {
        end = (end + chunk).min(data.len());
        let answer = parse(mode, &data[..end]);
        if answer != Parsed::Incomplete || end == data.len() {
            break answer;
        }
    };
    assert_eq!(first, whole, "read in pieces of {chunk}, up to {end}");
});
