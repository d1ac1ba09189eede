//! HTTP `Range: bytes=` requests (RFC 9110 §14) for a resource whose length is known: what
//! to answer, and the `Content-Range` values that go with it.
//!
//! One range is served: `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last `n` bytes). A
//! header that is malformed, names another unit, or asks for several ranges is answered
//! with the whole resource (`200`), which RFC 9110 allows ("a server MAY ignore the Range
//! header field"). A well-formed single range that starts at or beyond the end (or a
//! suffix of 0 bytes, or any range of an empty resource) is unsatisfiable: `416` with
//! `Content-Range: bytes */len`.
//!
//! Left out: `If-Range` (our resources have no validator), multipart/byteranges answers.

/// What to send for a request on a resource of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// `200 OK` with the whole resource (no Range header, or one that is ignored).
    Full,
    /// `206 Partial Content` with bytes `start..end` (`end` exclusive, `start < end`).
    Partial { start: u64, end: u64 },
    /// `416 Range Not Satisfiable`, `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Decides how to answer a `Range` header value (`None`: no header) for a resource of
/// `len` bytes.
pub fn answer_range(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(value) = header else {
        return RangeAnswer::Full;
    };
    match parse_single(value) {
        Some(spec) => spec.resolve(len),
        None => RangeAnswer::Full,
    }
}

/// The `Content-Range` value of a `206` answer: `bytes start-last/len` (`end` exclusive).
pub fn content_range(start: u64, end: u64, len: u64) -> String {
    format!("bytes {start}-{}/{len}", end.saturating_sub(1))
}

/// The `Content-Range` value of a `416` answer: `bytes */len`.
pub fn unsatisfied_range(len: u64) -> String {
    format!("bytes */{len}")
}

/// One byte-range-spec as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `a-b` (`last` inclusive) or `a-` (`last` = None).
    From { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl Spec {
    fn resolve(self, len: u64) -> RangeAnswer {
        match self {
            Spec::From { first, last } => {
                if first >= len {
                    return RangeAnswer::Unsatisfiable;
                }
                let end = match last {
                    Some(last) => last.saturating_add(1).min(len),
                    None => len,
                };
                RangeAnswer::Partial { start: first, end }
            }
            Spec::Suffix(n) => {
                if n == 0 || len == 0 {
                    return RangeAnswer::Unsatisfiable;
                }
                RangeAnswer::Partial {
                    start: len - n.min(len),
                    end: len,
                }
            }
        }
    }
}

/// Parses `bytes=<one spec>`; `None` for anything else (ignored: whole resource).
fn parse_single(value: &str) -> Option<Spec> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    // Empty list elements are allowed by the list syntax (`bytes=0-1,`); count the others.
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None; // several ranges: answered with the whole resource
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(Spec::From { first, last: None });
    }
    let last = number(last)?;
    // RFC 9110 §14.1.1: last < first makes the spec invalid (ignored).
    (last >= first).then_some(Spec::From {
        first,
        last: Some(last),
    })
}

/// A non-empty run of ASCII digits that fits in u64.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::*;

    #[test]
    fn table() {
        let cases: &[(Option<&str>, u64, RangeAnswer)] = &[
            (None, 100, Full),
            (Some("bytes=0-0"), 100, Partial { start: 0, end: 1 }),
            (Some("bytes=0-99"), 100, Partial { start: 0, end: 100 }),
            (Some("bytes=10-19"), 100, Partial { start: 10, end: 20 }),
            // The last position is clamped to the length.
            (
                Some("bytes=90-1000"),
                100,
                Partial {
                    start: 90,
                    end: 100,
                },
            ),
            (
                Some("bytes=50-"),
                100,
                Partial {
                    start: 50,
                    end: 100,
                },
            ),
            (
                Some("bytes=99-"),
                100,
                Partial {
                    start: 99,
                    end: 100,
                },
            ),
            (
                Some("bytes=-10"),
                100,
                Partial {
                    start: 90,
                    end: 100,
                },
            ),
            (Some("bytes=-1000"), 100, Partial { start: 0, end: 100 }),
            // Case and spaces.
            (Some(" Bytes = 1 - 2 "), 100, Partial { start: 1, end: 3 }),
            (Some("bytes=0-1,"), 100, Partial { start: 0, end: 2 }),
            // Unsatisfiable.
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=100-200"), 100, Unsatisfiable),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=-5"), 0, Unsatisfiable),
            // Ignored: the whole resource.
            (Some("bytes=0-1,5-6"), 100, Full),
            (Some("bytes=5-1"), 100, Full),
            (Some("items=0-1"), 100, Full),
            (Some("bytes=a-b"), 100, Full),
            (Some("bytes=-"), 100, Full),
            (Some("bytes="), 100, Full),
            (Some("bytes"), 100, Full),
            (Some("bytes=+1-2"), 100, Full),
            (Some("bytes=1-2-3"), 100, Full),
            (Some("bytes=99999999999999999999-"), 100, Full),
            (Some(""), 100, Full),
        ];
        for &(header, len, want) in cases {
            assert_eq!(answer_range(header, len), want, "{header:?} of {len}");
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(content_range(0, 1, 10), "bytes 0-0/10");
        assert_eq!(content_range(5, 10, 10), "bytes 5-9/10");
        assert_eq!(unsatisfied_range(42), "bytes */42");
    }

    #[test]
    fn large_lengths() {
        let len = u64::MAX;
        assert_eq!(
            answer_range(Some("bytes=18446744073709551613-"), len),
            Partial {
                start: u64::MAX - 2,
                end: u64::MAX
            }
        );
        assert_eq!(
            answer_range(Some("bytes=0-18446744073709551615"), len),
            Partial {
                start: 0,
                end: u64::MAX
            }
        );
    }
}
