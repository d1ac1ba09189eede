//! The query string of an HTTP request target (RFC 3986 §3.4) as the HTTP routes read it
//! (`/get`, `/list`, `/api/recordings/NAME/export.mp4`): `key=value` pairs separated by
//! `&`, keys and values percent-decoded (RFC 3986 §2.1).
//!
//! A literal `+` stays a `+` (it is not the form encoding's space), so a time offset sent
//! without encoding (`start=2026-11-21T23:00:00+01:00`) still reads right. A pair without
//! `=` is a key with an empty value; empty pairs (`a=1&&b=2`) are skipped. A broken escape
//! (`%4`, `%zz`, `%+1`) or escapes that decode to bytes that are not UTF-8 make the whole
//! query an error, which the routes answer with 400.
//!
//! Left out: `application/x-www-form-urlencoded` bodies, `;` as a separator.

use std::fmt;

/// Splits a request target into the path and the query string (without the `?`; empty
/// when there is none).
pub fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let (hi, lo) = (b.get(i + 1)?, b.get(i + 2)?);
            let digit = |d: &u8| char::from(*d).to_digit(16);
            // `to_digit` refuses what `from_str_radix` would take (a sign: `%+1`).
            out.push(u8::try_from(digit(hi)? * 16 + digit(lo)?).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but the unreserved characters (RFC 3986 §2.3).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string that is not percent-encoded right: the offending pair as sent (at most
/// 80 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub pair: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query parameter {:?}: broken percent-encoding",
            self.pair
        )
    }
}

impl std::error::Error for QueryError {}

/// The decoded parameters of a query string, in order (repeated keys kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(query: &str) -> Result<Query, QueryError> {
        let mut v = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(k), Some(val)) = (percent_decode(k), percent_decode(val)) else {
                return Err(QueryError {
                    pair: pair.chars().take(80).collect(),
                });
            };
            v.push((k, val));
        }
        Ok(Query(v))
    }

    /// The value of the first parameter called `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The query string: every key and value percent-encoded, `key=value` joined by `&`
/// (parses back to the same parameters).
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            write!(f, "{}={}", percent_encode(k), percent_encode(v))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes() {
        assert_eq!(
            percent_decode("2024-01-14T16%3A33%3A17%2B00%3A00").as_deref(),
            Some("2024-01-14T16:33:17+00:00")
        );
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%c3%a9").as_deref(), Some("é"));
        for broken in ["%zz", "%4", "%", "%+1", "%-1", "%C3", "a%ff"] {
            assert_eq!(percent_decode(broken), None, "{broken}");
        }
        assert_eq!(
            percent_encode("2026-01-01T00:00:00.5Z"),
            "2026-01-01T00%3A00%3A00.5Z"
        );
        assert_eq!(percent_encode("é &="), "%C3%A9%20%26%3D");
    }

    #[test]
    fn parses_queries() {
        let q = Query::parse("path=cam1&&start=2026-11-21T23:00:00+01:00&flag&path=x&=v")
            .expect("parses");
        assert_eq!(q.get("path"), Some("cam1"));
        assert_eq!(q.get("start"), Some("2026-11-21T23:00:00+01:00"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get(""), Some("v"));
        assert_eq!(q.get("end"), None);
        assert_eq!(Query::parse("").expect("empty"), Query::default());
        let e = Query::parse("a=1&b=%zz").expect_err("broken");
        assert_eq!(e.pair, "b=%zz");
        assert_eq!(
            e.to_string(),
            "query parameter \"b=%zz\": broken percent-encoding"
        );
    }

    #[test]
    fn formats_and_parses_again() {
        let q = Query(vec![
            ("path".into(), "cam 1".into()),
            (String::new(), "&=%".into()),
            ("k".into(), String::new()),
        ]);
        let s = q.to_string();
        assert_eq!(s, "path=cam%201&=%26%3D%25&k=");
        assert_eq!(Query::parse(&s), Ok(q));
        assert_eq!(split_target("/get?path=a?b"), ("/get", "path=a?b"));
        assert_eq!(split_target("/list"), ("/list", ""));
    }
}
