//! `Accept` negotiation between SSE and the AG-UI protobuf encoding.
//!
//! **A deliberate choice:** protobuf is chosen only when the `Accept` header explicitly
//! *names* `application/vnd.ag-ui.event+proto` with `q > 0`. Wildcards (`*/*`,
//! `application/*`), an absent header and `text/event-stream` all get SSE. Reference §3.3
//! notes that `@ag-ui/encoder` (and the spec's "admission" wording) would pick protobuf for
//! `*/*`; but `curl` and many HTTP libraries send `*/*` by default and expect text, SSE is the
//! binding every client MUST support, and `HttpAgent` never asks for protobuf at all. The
//! Strands TS endpoint makes the same choice "so `Accept: */*` doesn't surprise callers".
//! Relative quality values between SSE and protobuf are not compared (the spec says they are
//! not consulted): naming protobuf with any `q > 0` is enough.

/// The AG-UI protobuf media type (reference §3.4); the response `Content-Type` must be exactly
/// this, with no parameters.
pub const PROTO_MEDIA_TYPE: &str = "application/vnd.ag-ui.event+proto";

/// The response encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `text/event-stream`, `data: <json>\n\n` frames.
    Sse,
    /// `application/vnd.ag-ui.event+proto`, length-prefixed protobuf frames.
    Proto,
}

impl Encoding {
    /// The response `Content-Type` for this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Sse => crate::sse::CONTENT_TYPE,
            Encoding::Proto => PROTO_MEDIA_TYPE,
        }
    }
}

/// Chooses the encoding from the request's `Accept` header (see the module docs).
///
/// Media types compare case-insensitively (RFC 9110 §8.3.1); parameters other than `q` are
/// ignored; a malformed `q` makes that entry not count.
pub fn negotiate(accept: Option<&str>) -> Encoding {
    let Some(accept) = accept else {
        return Encoding::Sse;
    };
    let names_proto = accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media_type = parts.next().unwrap_or_default().trim();
        media_type.eq_ignore_ascii_case(PROTO_MEDIA_TYPE) && quality(parts).is_some_and(|q| q > 0.0)
    });
    if names_proto {
        Encoding::Proto
    } else {
        Encoding::Sse
    }
}

/// The `q` parameter among `params` (default 1); `None` when it is not a valid qvalue
/// (RFC 9110 §12.4.2: `0(.ddd)?` or `1(.000)?`).
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        let value = value.trim();
        let valid = match value.split_once('.') {
            None => value == "0" || value == "1",
            Some((int, frac)) => {
                frac.len() <= 3
                    && frac.bytes().all(|b| b.is_ascii_digit())
                    && (int == "0" || (int == "1" && frac.bytes().all(|b| b == b'0')))
            }
        };
        return if valid { value.parse().ok() } else { None };
    }
    Some(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_wildcards_and_sse_get_sse() {
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/*"),
            Some("text/event-stream"),
            Some("application/json"),
            Some("text/event-stream, */*;q=0.1"),
        ] {
            assert_eq!(negotiate(accept), Encoding::Sse, "{accept:?}");
        }
    }

    #[test]
    fn naming_proto_gets_proto() {
        for accept in [
            "application/vnd.ag-ui.event+proto",
            "APPLICATION/VND.AG-UI.EVENT+PROTO",
            "text/event-stream, application/vnd.ag-ui.event+proto;q=0.5",
            "text/event-stream;q=1, application/vnd.ag-ui.event+proto; q=0.001",
            "  application/vnd.ag-ui.event+proto  ;  charset=binary ; Q=1.000 ",
            "application/json,application/vnd.ag-ui.event+proto",
        ] {
            assert_eq!(negotiate(Some(accept)), Encoding::Proto, "{accept}");
        }
    }

    #[test]
    fn q_zero_or_malformed_q_refuses_proto() {
        for accept in [
            "application/vnd.ag-ui.event+proto;q=0",
            "application/vnd.ag-ui.event+proto;q=0.000",
            "application/vnd.ag-ui.event+proto;q=abc",
            "application/vnd.ag-ui.event+proto;q=1.5",
            "application/vnd.ag-ui.event+proto;q=0.1234",
            "application/vnd.ag-ui.event+protobuf",
            "application/vnd.ag-ui.event",
        ] {
            assert_eq!(negotiate(Some(accept)), Encoding::Sse, "{accept}");
        }
    }

    #[test]
    fn content_types_are_exact() {
        assert_eq!(Encoding::Sse.content_type(), "text/event-stream");
        assert_eq!(
            Encoding::Proto.content_type(),
            "application/vnd.ag-ui.event+proto"
        );
    }
}
