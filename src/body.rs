//! The two ways a webhook body is read, JSON or form, as intake declares and the queue stores them.

/// How a body is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

impl BodyKind {
    /// The media type stored beside the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }

    /// The kind of a stored media type; anything but the form type reads as JSON (the only two
    /// ever stored).
    pub fn from_stored(media_type: &str) -> Self {
        if media_type == Self::Form.as_str() {
            Self::Form
        } else {
            Self::Json
        }
    }
}
