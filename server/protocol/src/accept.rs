//! `Accept` negotiation between SSE and the AG-UI protobuf encoding.
//!
//! The rule, RFC 9110 §12.5.1 preference with one deliberate exception:
//!
//! 1. Each encoding gets the quality (`q`, RFC 9110 §12.4.2; default 1) of the **most specific**
//!    entry that matches it. SSE is matched by `text/event-stream`, else `text/*`, else `*/*`;
//!    protobuf only by `application/vnd.ag-ui.event+proto` named explicitly. Among entries of
//!    the same specificity the highest `q` counts. An encoding no entry matches has `q = 0`.
//! 2. `q = 0` means "not acceptable" (RFC 9110 §12.4.2).
//! 3. Protobuf is chosen only when its `q` is above 0 **and higher** than SSE's. A tie goes to
//!    SSE (the binding every client MUST support).
//! 4. Otherwise SSE, including when nothing listed is acceptable (`application/json`, or both
//!    at `q=0`): RFC 9110 §12.5.1 lets a server disregard an `Accept` it cannot satisfy rather
//!    than answer 406, and SSE is what every AG-UI client reads (`HttpAgent` always asks for it).
//!
//! **The exception:** a wildcard never selects protobuf. `*/*`, `application/*` or an absent
//! header get SSE, although RFC 9110 (and the spec's "admission" wording, reference §3.3, as
//! `@ag-ui/encoder` implements it) would let `*/*` admit protobuf: `curl` and many HTTP
//! libraries send `*/*` by default and expect text. The Strands TS endpoint makes the same choice
//! "so `Accept: */*` doesn't surprise callers".
//!
//! Parsing is lenient where it is safe: media types and the `q` name compare case-insensitively
//! (RFC 9110 §8.3.1, §12.4.2); other parameters are ignored; an entry whose `q` is not a valid
//! qvalue (`0(.ddd)?` or `1(.000)?`), or that is not `type/subtype`, does not count at all.

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

/// Chooses the encoding from the request's `Accept` field values, every one of them, in the
/// order they came (the rule is in the module docs).
///
/// A request may carry several `Accept` fields; together they mean the one field their values
/// make when joined with commas (RFC 9110 §5.3), so a preference in the second counts as if it
/// were in the first. Pass them all, e.g. `headers.get_all(ACCEPT)` as strings, or an
/// `Option<&str>` for at most one; none at all is an absent header. A caller leaves out a
/// value that is not text (not visible ASCII): it names no media type this rule knows.
pub fn negotiate<'a>(fields: impl IntoIterator<Item = &'a str>) -> Encoding {
    // (specificity, q) of the most specific entries matching SSE so far; 0 = `*/*`,
    // 1 = `text/*`, 2 = `text/event-stream`.
    let mut sse: Option<(u8, u16)> = None;
    let mut proto: Option<u16> = None;
    // The fields' elements in order: the list their comma-joined value would be.
    for range in fields.into_iter().flat_map(|field| field.split(',')) {
        let mut parts = range.split(';');
        let Some((kind, subtype)) = parts.next().unwrap_or_default().trim().split_once('/') else {
            continue;
        };
        let Some(q) = quality(parts) else {
            continue;
        };
        if let Some(specificity) = sse_specificity(kind, subtype) {
            sse = match sse {
                Some((best, _)) if specificity > best => Some((specificity, q)),
                Some((best, old)) if specificity == best => Some((best, old.max(q))),
                Some(kept) => Some(kept),
                None => Some((specificity, q)),
            };
        } else if kind.eq_ignore_ascii_case("application")
            && subtype.eq_ignore_ascii_case(PROTO_SUBTYPE)
        {
            proto = Some(proto.map_or(q, |old| old.max(q)));
        }
    }
    let sse_q = sse.map_or(0, |(_, q)| q);
    let proto_q = proto.unwrap_or(0);
    if proto_q > 0 && proto_q > sse_q {
        Encoding::Proto
    } else {
        Encoding::Sse
    }
}

/// `application/` + this is [`PROTO_MEDIA_TYPE`].
const PROTO_SUBTYPE: &str = "vnd.ag-ui.event+proto";

/// How specifically `kind/subtype` names `text/event-stream`: 2 exactly, 1 as `text/*`, 0 as
/// `*/*`; `None` when it does not match it.
fn sse_specificity(kind: &str, subtype: &str) -> Option<u8> {
    match (kind, subtype) {
        ("*", "*") => Some(0),
        (k, "*") if k.eq_ignore_ascii_case("text") => Some(1),
        (k, s) if k.eq_ignore_ascii_case("text") && s.eq_ignore_ascii_case("event-stream") => {
            Some(2)
        }
        _ => None,
    }
}

/// The `q` parameter among `params` in thousandths (default 1000); `None` when it is not a
/// valid qvalue (RFC 9110 §12.4.2: `0(.ddd)?` or `1(.000)?`). Integers, so `0.5` and `0.500`
/// tie exactly.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        let (int, frac) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // "5" → 500, "05" → 50, "" → 0.
        let thousandths = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0'));
        return match int {
            "0" => Some(thousandths),
            "1" if thousandths == 0 => Some(1000),
            _ => None,
        };
    }
    Some(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = "application/vnd.ag-ui.event+proto";

    fn pick(accept: &str) -> Encoding {
        negotiate(Some(accept))
    }

    #[test]
    fn absent_wildcards_and_sse_get_sse() {
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/*"),
            Some("text/*"),
            Some("text/event-stream"),
            Some("text/event-stream, */*;q=0.1"),
        ] {
            assert_eq!(negotiate(accept), Encoding::Sse, "{accept:?}");
        }
    }

    #[test]
    fn naming_only_proto_gets_proto() {
        for accept in [
            "application/vnd.ag-ui.event+proto",
            "APPLICATION/VND.AG-UI.EVENT+PROTO",
            "  application/vnd.ag-ui.event+proto  ;  charset=binary ; Q=1.000 ",
            "application/json,application/vnd.ag-ui.event+proto",
            // A wildcard that does not admit SSE competes with nothing.
            "application/*;q=0.9, application/vnd.ag-ui.event+proto;q=0.5",
        ] {
            assert_eq!(pick(accept), Encoding::Proto, "{accept}");
        }
    }

    /// The defect of issue #12: SSE preferred by `q` used to get protobuf.
    #[test]
    fn the_higher_quality_wins() {
        assert_eq!(
            pick(&format!("text/event-stream;q=1, {PROTO};q=0.5")),
            Encoding::Sse
        );
        assert_eq!(
            pick(&format!("text/event-stream, {PROTO};q=0.5")),
            Encoding::Sse
        );
        assert_eq!(
            pick(&format!("text/event-stream;q=1, {PROTO}; q=0.001")),
            Encoding::Sse
        );
        // The reverse preference (the control) gets protobuf, in either order.
        assert_eq!(
            pick(&format!("text/event-stream;q=0.5, {PROTO};q=1")),
            Encoding::Proto
        );
        assert_eq!(
            pick(&format!("{PROTO}, text/event-stream;q=0.5")),
            Encoding::Proto
        );
        assert_eq!(
            pick(&format!("{PROTO};q=0.501, text/event-stream;q=0.5")),
            Encoding::Proto
        );
    }

    #[test]
    fn a_tie_goes_to_sse() {
        for accept in [
            format!("text/event-stream, {PROTO}"),
            format!("{PROTO}, text/event-stream"),
            format!("{PROTO};q=0.5, text/event-stream;q=0.5"),
            format!("{PROTO};q=0.5, text/event-stream;q=0.500"),
            format!("{PROTO}, */*"),
            format!("{PROTO};q=0.3, text/*;q=0.3"),
        ] {
            assert_eq!(pick(&accept), Encoding::Sse, "{accept}");
        }
    }

    #[test]
    fn wildcards_that_admit_sse_compete_with_their_quality() {
        assert_eq!(pick(&format!("*/*;q=0.6, {PROTO};q=0.5")), Encoding::Sse);
        assert_eq!(pick(&format!("*/*;q=0.1, {PROTO}")), Encoding::Proto);
        assert_eq!(pick(&format!("text/*;q=0.6, {PROTO};q=0.5")), Encoding::Sse);
        assert_eq!(
            pick(&format!("text/*;q=0.4, {PROTO};q=0.5")),
            Encoding::Proto
        );
    }

    #[test]
    fn the_most_specific_entry_sets_the_quality() {
        // SSE's own entry (q=0.1) overrides the wildcards that would give it 0.9.
        assert_eq!(
            pick(&format!(
                "text/event-stream;q=0.1, */*;q=0.9, text/*;q=0.9, {PROTO};q=0.5"
            )),
            Encoding::Proto
        );
        // And the other way round: `*/*;q=0` does not make an explicitly listed SSE
        // unacceptable.
        assert_eq!(
            pick(&format!("*/*;q=0, text/event-stream, {PROTO};q=0.5")),
            Encoding::Sse
        );
        // Same specificity twice: the higher q counts.
        assert_eq!(
            pick(&format!(
                "text/event-stream;q=0.2, text/event-stream;q=0.8, {PROTO};q=0.5"
            )),
            Encoding::Sse
        );
    }

    #[test]
    fn q_zero_is_not_acceptable() {
        assert_eq!(pick(&format!("{PROTO};q=0")), Encoding::Sse);
        assert_eq!(pick(&format!("{PROTO};q=0.000")), Encoding::Sse);
        assert_eq!(
            pick(&format!("text/event-stream;q=0, {PROTO};q=0.001")),
            Encoding::Proto
        );
        assert_eq!(pick(&format!("*/*;q=0, {PROTO};q=0.001")), Encoding::Proto);
    }

    #[test]
    fn nothing_acceptable_gets_sse() {
        for accept in [
            "application/json".to_owned(),
            "text/event-stream;q=0".to_owned(),
            format!("text/event-stream;q=0, {PROTO};q=0"),
            "image/png, application/xml;q=0.5".to_owned(),
            "garbage".to_owned(),
            ",;,".to_owned(),
        ] {
            assert_eq!(pick(&accept), Encoding::Sse, "{accept}");
        }
    }

    #[test]
    fn malformed_entries_do_not_count() {
        for accept in [
            format!("{PROTO};q=abc"),
            format!("{PROTO};q=1.5"),
            format!("{PROTO};q=0.1234"),
            format!("{PROTO};q=-1"),
            format!("{PROTO};q="),
            "application/vnd.ag-ui.event+protobuf".to_owned(),
            "application/vnd.ag-ui.event".to_owned(),
            "*/vnd.ag-ui.event+proto".to_owned(),
        ] {
            assert_eq!(pick(&accept), Encoding::Sse, "{accept}");
        }
        // A malformed SSE entry does not count either, so it does not outrank protobuf.
        assert_eq!(
            pick(&format!("text/event-stream;q=abc, {PROTO};q=0.5")),
            Encoding::Proto
        );
        // Valid edge forms of a qvalue.
        assert_eq!(
            pick(&format!("text/event-stream;q=0., {PROTO};q=1.")),
            Encoding::Proto
        );
    }

    #[test]
    fn names_and_parameters_are_case_insensitive_and_other_parameters_ignored() {
        assert_eq!(
            pick("TEXT/EVENT-STREAM;Q=0.2, Application/Vnd.Ag-Ui.Event+Proto;q=0.3"),
            Encoding::Proto
        );
        assert_eq!(
            pick(
                "Text/Event-Stream;charset=utf-8;q=0.9, application/vnd.ag-ui.event+proto;charset=binary;q=0.8"
            ),
            Encoding::Sse
        );
        assert_eq!(
            pick(&format!("Text/*;Q=0.9, {PROTO};level=1;q=0.95")),
            Encoding::Proto
        );
    }

    #[test]
    fn qvalues_are_read_in_thousandths() {
        let q = |v: &str| quality(std::iter::once(v));
        assert_eq!(q("q=1"), Some(1000));
        assert_eq!(q("q=1.000"), Some(1000));
        assert_eq!(q("q=0.5"), Some(500));
        assert_eq!(q("q=0.05"), Some(50));
        assert_eq!(q("q=0.001"), Some(1));
        assert_eq!(q("q=0."), Some(0));
        assert_eq!(q("Q = 0.25 "), Some(250));
        for bad in [
            "q=1.001", "q=2", "q=0.1234", "q=abc", "q=", "q=.5", "q=+0.5", "q=0.-1",
        ] {
            assert_eq!(q(bad), None, "{bad}");
        }
        assert_eq!(q("level=1"), Some(1000), "no q: the default");
    }

    /// RFC 9110 §5.3: two `Accept` fields are one comma-joined list, so a preference for
    /// protobuf in the second field counts; the same values in one field (the control) agree,
    /// and so does the reverse preference split the same way.
    #[test]
    fn every_accept_field_counts_as_one_joined_list() {
        let fields = ["text/event-stream;q=0.5", PROTO];
        assert_eq!(negotiate(fields), Encoding::Proto);
        assert_eq!(negotiate(Some(fields.join(", ").as_str())), Encoding::Proto);
        // Reading only the first field (the defect) would have said SSE.
        assert_eq!(negotiate(fields.into_iter().take(1)), Encoding::Sse);
        let reverse = format!("{PROTO};q=0.5");
        assert_eq!(
            negotiate(["text/event-stream", reverse.as_str()]),
            Encoding::Sse
        );
        // The most specific entry and the highest q still count across fields.
        let second = format!("text/event-stream;q=0.1, {PROTO};q=0.5");
        assert_eq!(negotiate(["*/*;q=0.9", second.as_str()]), Encoding::Proto);
        // An empty field and no field at all are nothing to prefer.
        assert_eq!(negotiate(["", PROTO]), Encoding::Proto);
        assert_eq!(negotiate(std::iter::empty::<&str>()), Encoding::Sse);
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
