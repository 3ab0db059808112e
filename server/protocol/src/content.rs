//! Content parts: the multimodal pieces of user messages, tool messages and tool results.
//!
//! Reference §2 "ContentPart" ([npm-core] `src/generated/types.ts`): discriminated by `type`
//! (`text`, `image`, `audio`, `video`, `document`); media parts carry a `source` discriminated
//! by its own `type` (`data`, `url`, `file`). A producer that cannot use a part skips it and
//! MUST NOT fetch `url` sources blindly (SSRF) nor parse `file` handles (reference §9.11): these
//! types only carry the data, they never resolve it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `content` of a user or tool message, or of a `TOOL_CALL_RESULT`: a plain string or a list
/// of parts (reference §1 `TOOL_CALL_RESULT`, §2 `user`/`tool` messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserContent {
    /// Plain text, the only form the 0.0.x clients accept on `TOOL_CALL_RESULT`.
    Text(String),
    /// A list of content parts (AG-UI 1.0).
    Parts(Vec<ContentPart>),
}

/// The `content` of a `TOOL_CALL_RESULT` event: the same shape as a user message's content.
pub type ToolResultContent = UserContent;

impl UserContent {
    /// The text of this content: the string itself, or the `text` parts joined with `"\n"`
    /// (media parts are skipped). Used where only text can go (e.g. a model prompt).
    pub fn text(&self) -> String {
        match self {
            UserContent::Text(text) => text.clone(),
            UserContent::Parts(parts) => {
                let mut out = String::new();
                for part in parts {
                    if let ContentPart::Text(TextPart { text, .. }) = part {
                        if !out.is_empty() {
                            out.push('\n');
                        }
                        out.push_str(text);
                    }
                }
                out
            }
        }
    }
}

impl Default for UserContent {
    fn default() -> Self {
        UserContent::Text(String::new())
    }
}

impl From<String> for UserContent {
    fn from(text: String) -> Self {
        UserContent::Text(text)
    }
}

impl From<&str> for UserContent {
    fn from(text: &str) -> Self {
        UserContent::Text(text.to_owned())
    }
}

impl From<Vec<ContentPart>> for UserContent {
    fn from(parts: Vec<ContentPart>) -> Self {
        UserContent::Parts(parts)
    }
}

/// One content part, discriminated by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentPart {
    /// `{type:"text", text, id?, metadata?}`
    Text(TextPart),
    /// `{type:"image", source, id?, metadata?}`
    Image(MediaPart),
    /// `{type:"audio", source, id?, metadata?}`
    Audio(MediaPart),
    /// `{type:"video", source, id?, metadata?}`
    Video(MediaPart),
    /// `{type:"document", source, id?, metadata?}`
    Document(MediaPart),
}

impl ContentPart {
    /// A text part with no id or metadata.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text(TextPart::new(text))
    }
}

/// A text content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextPart {
    /// The text.
    pub text: String,
    /// Optional part id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Free-form metadata (any non-null JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl TextPart {
    /// A text part with no id or metadata.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            id: None,
            metadata: None,
        }
    }
}

/// An image, audio, video or document part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaPart {
    /// Where the bytes are.
    pub source: PartSource,
    /// Optional part id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Free-form metadata (any non-null JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl MediaPart {
    /// A media part with no id or metadata.
    pub fn new(source: PartSource) -> Self {
        Self {
            source,
            id: None,
            metadata: None,
        }
    }
}

/// The source of a media part, discriminated by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum PartSource {
    /// Inline base64 data.
    Data {
        /// Base64-encoded bytes.
        value: String,
        /// The media type of the bytes (required for inline data).
        mime_type: String,
    },
    /// A URL. Never fetched blindly by this server (SSRF, reference §9.11).
    Url {
        /// The URL.
        value: String,
        /// The media type, if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    /// An opaque provider file handle. Never fetched or parsed (reference §2).
    File {
        /// The handle.
        value: String,
        /// The provider that issued the handle.
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        /// The media type, if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_and_part_list_content_both_parse() {
        let text: UserContent = serde_json::from_value(json!("hi")).unwrap();
        assert_eq!(text, UserContent::Text("hi".into()));
        let parts: UserContent = serde_json::from_value(json!([
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "url", "value": "https://x/y.png"}},
            {"type": "document", "source": {"type": "data", "value": "AAAA", "mimeType": "application/pdf"}},
            {"type": "audio", "source": {"type": "file", "value": "f1", "provider": "openai"}}
        ]))
        .unwrap();
        let UserContent::Parts(parts) = parts else {
            panic!("expected parts")
        };
        assert_eq!(parts.len(), 4);
        assert_eq!(
            parts[2],
            ContentPart::Document(MediaPart::new(PartSource::Data {
                value: "AAAA".into(),
                mime_type: "application/pdf".into()
            }))
        );
    }

    #[test]
    fn media_sources_serialize_camel_case_and_omit_absent_fields() {
        let part = ContentPart::Image(MediaPart::new(PartSource::Url {
            value: "https://x".into(),
            mime_type: Some("image/png".into()),
        }));
        assert_eq!(
            serde_json::to_string(&part).unwrap(),
            r#"{"type":"image","source":{"type":"url","value":"https://x","mimeType":"image/png"}}"#
        );
        let part = ContentPart::Video(MediaPart::new(PartSource::File {
            value: "h".into(),
            provider: None,
            mime_type: None,
        }));
        assert_eq!(
            serde_json::to_string(&part).unwrap(),
            r#"{"type":"video","source":{"type":"file","value":"h"}}"#
        );
    }

    #[test]
    fn data_source_requires_mime_type() {
        let bad = json!({"type": "image", "source": {"type": "data", "value": "AAAA"}});
        assert!(serde_json::from_value::<ContentPart>(bad).is_err());
        let good = json!({"type": "image", "source": {"type": "data", "value": "AAAA", "mimeType": "image/png"}});
        assert!(serde_json::from_value::<ContentPart>(good).is_ok());
    }

    #[test]
    fn text_joins_text_parts_and_skips_media() {
        let content = UserContent::Parts(vec![
            ContentPart::text("a"),
            ContentPart::Image(MediaPart::new(PartSource::Url {
                value: "u".into(),
                mime_type: None,
            })),
            ContentPart::text("b"),
        ]);
        assert_eq!(content.text(), "a\nb");
        assert_eq!(UserContent::from("x").text(), "x");
    }
}
