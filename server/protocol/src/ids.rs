//! Identifier newtypes.
//!
//! AG-UI ids are opaque strings chosen by whoever mints them: clients send ids such as
//! `"thread_1"`, so these are `String` newtypes, never `Uuid` (STYLE.md "Modelling the
//! protocol"). Each one is `#[serde(transparent)]`: on the wire it is a plain JSON string.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

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
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
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
string_id!(
    /// A message (`messageId`, `Message.id`), also the id of a reasoning span or activity.
    MessageId
);
string_id!(
    /// A tool call (`toolCallId`, `ToolCall.id`).
    ToolCallId
);

#[cfg(test)]
mod tests {
    use super::*;

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
