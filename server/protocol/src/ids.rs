//! Identifier newtypes.
//!
//! AG-UI ids are opaque strings chosen by whoever mints them: clients send ids such as
//! `"thread_1"`, so these are `String` newtypes, never `Uuid` (STYLE.md "Modelling the
//! protocol"). Each one is `#[serde(transparent)]`: on the wire it is a plain JSON string.
//!
//! Ids that arrive from a client are bounded ([`check_id`]): they name threads in the store, runs
//! in the audit log and both in every log line, so an unbounded or multi-line id would cost
//! storage and forge log lines. [`crate::parse_run_input`] applies the rule to every id of a
//! `RunAgentInput`; the newtypes themselves accept any string (the server mints its own ids).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        string_id_api!($name);
    };
}

/// An id that every event of a streamed item repeats (a message's or tool call's, on each of
/// its deltas): shared, so the run loop's copy for the next delta is a reference count, not an
/// allocation and a copy of the id (200 a reply of 200 deltas).
macro_rules! shared_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Eq, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                // As `str` hashes: a map keyed by the id is read with a `&str` (`Borrow`).
                self.0.hash(state);
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // The deltas of one item carry copies of one id: equal without a look at the
                // bytes (the compaction of history and the sequence guard compare them per
                // event).
                Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
            }
        }

        impl $name {
            /// Copies `id` into a new shared id (one allocation).
            pub fn new(id: impl AsRef<str>) -> Self {
                Self(Arc::from(id.as_ref()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned `String` (a copy).
            pub fn into_string(self) -> String {
                self.0.as_ref().to_owned()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Arc::from(""))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(SharedIdVisitor).map(Self)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(Arc::from(id.as_str()))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.into_string()
            }
        }

        string_id_common!($name);
    };
}

/// Reads a JSON string straight into an `Arc<str>`: one allocation, whether the input lends
/// the text or it had escapes to decode (`Cow<str>` or `String` would allocate a second time).
struct SharedIdVisitor;

impl serde::de::Visitor<'_> for SharedIdVisitor {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string id")
    }

    fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(id))
    }
}

/// The API of a `String` id (see [`string_id`]).
macro_rules! string_id_api {
    ($name:ident) => {
        impl $name {
            /// Wraps an owned or borrowed string.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the inner `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        string_id_common!($name);
    };
}

/// What every id type has: display, deref and comparison with `str`.
macro_rules! string_id_common {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

string_id!(
    /// A conversation thread (`threadId`): the unit that owns history and state.
    ThreadId
);
string_id!(
    /// One run of an agent on a thread (`runId`, `parentRunId`).
    RunId
);
shared_id!(
    /// A message (`messageId`, `Message.id`), also the id of a reasoning span or activity.
    MessageId
);
shared_id!(
    /// A tool call (`toolCallId`, `ToolCall.id`).
    ToolCallId
);

/// The longest id accepted from a client, in bytes of UTF-8: `threadId`, `runId`,
/// `parentRunId`, message ids and tool-call ids. Generous for every id scheme clients use
/// (UUIDs are 36 bytes, `thread_<ulid>` ~33), small enough that an id can be stored, indexed
/// and logged on every run without thought.
pub const MAX_ID_BYTES: usize = 256;

/// Why a client-supplied id is refused (see [`check_id`]). `Display` names the rule, never the
/// id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is `""`.
    #[error("must not be empty")]
    Empty,
    /// The id is longer than [`MAX_ID_BYTES`].
    #[error("must be at most {max} bytes", max = MAX_ID_BYTES)]
    TooLong,
    /// The id holds a control character (Unicode category Cc: C0, DEL or C1), such as a
    /// newline or the ESC of a terminal escape sequence.
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Checks the rule for ids a client sends: non-empty, at most [`MAX_ID_BYTES`] bytes, no
/// control character (`char::is_control`, exactly Unicode Cc). Nothing else is required: ids
/// stay opaque (spaces, punctuation and any other Unicode are fine).
///
/// # Errors
///
/// The [`IdError`] of the first rule broken, in the order above.
pub fn check_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        Err(IdError::Empty)
    } else if id.len() > MAX_ID_BYTES {
        Err(IdError::TooLong)
    } else if id.chars().any(char::is_control) {
        Err(IdError::ControlCharacter)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_ids_are_plain_json_strings_and_a_copy_shares_the_text() {
        let id = MessageId::new("msg-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""msg-1""#);
        let back: MessageId = serde_json::from_str(r#""msg-1""#).unwrap();
        assert_eq!(back, id);
        // Escaped input (not borrowable) reads the same way.
        let escaped: ToolCallId = serde_json::from_str(r#""call\u002d1""#).unwrap();
        assert_eq!(escaped, "call-1");
        assert!(serde_json::from_str::<MessageId>("1").is_err());
        // What the run loop relies on: the copy for the next delta is the same text, not a new
        // allocation. (A `String` id's copy is a new buffer: the positive control.)
        let copy = id.clone();
        assert_eq!(copy.as_str().as_ptr(), id.as_str().as_ptr());
        assert_eq!(copy, id);
        // Equal text in another allocation is equal too, and hashes as its `str` does.
        let other = MessageId::new("msg-1");
        assert_ne!(other.as_str().as_ptr(), id.as_str().as_ptr());
        assert_eq!(other, id);
        assert_ne!(MessageId::new("msg-2"), id);
        let mut set = std::collections::HashSet::new();
        set.insert(other);
        assert!(set.contains("msg-1"));
        let thread = ThreadId::new("t");
        assert_ne!(thread.clone().as_str().as_ptr(), thread.as_str().as_ptr());
        assert_eq!(MessageId::default(), "");
        assert_eq!(String::from(id), "msg-1");
    }

    #[test]
    fn the_id_rule_bounds_length_and_refuses_control_characters() {
        assert_eq!(check_id(""), Err(IdError::Empty));
        assert_eq!(check_id(&"a".repeat(MAX_ID_BYTES)), Ok(()));
        assert_eq!(
            check_id(&"a".repeat(MAX_ID_BYTES + 1)),
            Err(IdError::TooLong)
        );
        // Bytes, not characters: 128 two-byte characters fit, 129 do not.
        assert_eq!(check_id(&"é".repeat(128)), Ok(()));
        assert_eq!(check_id(&"é".repeat(129)), Err(IdError::TooLong));
        for bad in [
            "a\nb",
            "\r",
            "\t",
            "x\u{1b}[2J",
            "\u{0}",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
        ] {
            assert_eq!(check_id(bad), Err(IdError::ControlCharacter), "{bad:?}");
        }
        // Positive controls: ordinary ids of every scheme clients use.
        for good in [
            "thread_1",
            "0b7c3f6e-8f1d-4c43-9d39-5d5b8c1a2f10",
            "run 2 (retry)",
            "ünïcödé-✓",
            "a/b~c",
        ] {
            assert_eq!(check_id(good), Ok(()), "{good}");
        }
        assert_eq!(IdError::TooLong.to_string(), "must be at most 256 bytes");
    }

    #[test]
    fn ids_are_plain_json_strings() {
        let id = ThreadId::from("thread_1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""thread_1""#);
        let back: ThreadId = serde_json::from_str(r#""thread_1""#).unwrap();
        assert_eq!(back, id);
        assert_eq!(back.as_str(), "thread_1");
        assert_eq!(back.to_string(), "thread_1");
        assert_eq!(&*back, "thread_1");
    }

    #[test]
    fn ids_reject_non_strings() {
        assert!(serde_json::from_str::<RunId>("42").is_err());
        assert!(serde_json::from_str::<RunId>("null").is_err());
    }
}
