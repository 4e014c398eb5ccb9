//! CleverTap's request envelope and answer shapes, read leniently (answers vary by era).

use serde_json::Value;

/// A request body, `{"d":[…]}` for uploads or `{"identity":[…]}` / `{"guid":[…]}` for profile
/// deletions, written from items already serialized (never re-parsed) one at a time, so the
/// caller can let go of each as it is copied in; it remembers where each item lies.
pub struct Envelope {
    body: Vec<u8>,
    spans: Vec<std::ops::Range<usize>>,
}

impl Envelope {
    /// `items_len`: the items' bytes plus one per item (the body is allocated once).
    pub fn new(key: &str, items_len: usize) -> Self {
        let mut body = Vec::with_capacity(items_len + key.len() + 8);
        body.extend_from_slice(b"{\"");
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(b"\":[");
        Self {
            body,
            spans: Vec::new(),
        }
    }

    pub fn push(&mut self, item: &[u8]) {
        if !self.spans.is_empty() {
            self.body.push(b',');
        }
        let start = self.body.len();
        self.body.extend_from_slice(item);
        self.spans.push(start..self.body.len());
    }

    /// The body, and the byte range of each item in it, in order.
    pub fn finish(mut self) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        self.body.extend_from_slice(b"]}");
        (self.body, self.spans)
    }
}

/// One entry of `unprocessed`, whatever shape CleverTap used.
#[derive(Debug, Clone, PartialEq)]
pub struct Unprocessed {
    /// CleverTap's code; 0 when the answer gave none (Oct 2017) or one that is not a number.
    pub code: u16,
    pub error: String,
    /// The echoed record, parsed when CleverTap sent it as a JSON string (2017 answers).
    pub record: Option<Value>,
}

/// The parts of a 200 answer freshtap decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadResponse {
    pub processed: Option<u64>,
    pub unprocessed: Vec<Unprocessed>,
}

impl UploadResponse {
    /// `None` when the body is not a JSON object.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        let processed = object.get("processed").and_then(Value::as_u64);
        let unprocessed = object
            .get("unprocessed")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(Unprocessed::from_value).collect())
            .unwrap_or_default();
        Some(Self {
            processed,
            unprocessed,
        })
    }
}

impl Unprocessed {
    fn from_value(item: &Value) -> Self {
        let Some(object) = item.as_object() else {
            return Self {
                code: 0,
                error: item.to_string(),
                record: None,
            };
        };
        if let Some(code) = object.get("code") {
            let code = match code {
                Value::String(s) => s.trim().parse().unwrap_or(0),
                other => other
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(0),
            };
            let error = object
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let record = match object.get("record") {
                Some(Value::String(text)) => serde_json::from_str(text).ok(),
                Some(value) => Some(value.clone()),
                None => None,
            };
            return Self {
                code,
                error,
                record,
            };
        }
        // Oct 2017 shape: {"<record JSON>": "<error>"} with no code.
        let (record, error) = object
            .iter()
            .next()
            .map(|(k, v)| {
                (
                    serde_json::from_str(k).ok(),
                    v.as_str().unwrap_or("").to_owned(),
                )
            })
            .unwrap_or((None, String::new()));
        Self {
            code: 0,
            error,
            record,
        }
    }

    /// `k` of "Skipped record number : k" (1-based), as a 0-based index.
    pub fn skipped_index(&self) -> Option<usize> {
        let at = self.error.rfind("Skipped record number")?;
        let rest = self.error[at + "Skipped record number".len()..].trim_start();
        let rest = rest.strip_prefix(':')?.trim_start();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<usize>().ok()?.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_numbers_are_read_whatever_the_spacing() {
        let cases = [
            (
                "Profile data is incorrect. Email is not valid.Skipped record number : 2",
                Some(1),
            ),
            ("Skipped record number: 1", Some(0)),
            ("Skipped record number :12 trailing", Some(11)),
            ("no number here", None),
            ("Skipped record number : 0", None),
        ];
        for (error, expected) in cases {
            let item = Unprocessed {
                code: 515,
                error: error.into(),
                record: None,
            };
            assert_eq!(item.skipped_index(), expected, "{error}");
        }
    }

    #[test]
    fn answers_of_every_era_parse() {
        let padded = br#"{ "status" : "partial" , "processed" : 1 , "unprocessed" : [ { "status" : "fail" , "code" : 515 , "error" : "x" , "record" : { "identity" : "4" } } ] }"#;
        let parsed = UploadResponse::parse(padded).expect("parses");
        assert_eq!(parsed.processed, Some(1));
        assert_eq!(parsed.unprocessed[0].code, 515);
        let string_record = br#"{"status":"success","processed":0,"unprocessed":[{"status":"fail","code":525,"error":"e","record":"{ \"identity\" : \"22\" }"}]}"#;
        let parsed = UploadResponse::parse(string_record).expect("parses");
        assert_eq!(
            parsed.unprocessed[0]
                .record
                .as_ref()
                .and_then(|r| r.get("identity"))
                .and_then(Value::as_str),
            Some("22")
        );
        let no_code = br#"{"status":"fail","processed":0,"unprocessed":[{"{\"identity\":\"9\"}":"bad record"}]}"#;
        let parsed = UploadResponse::parse(no_code).expect("parses");
        assert_eq!(parsed.unprocessed[0].code, 0);
        assert_eq!(parsed.unprocessed[0].error, "bad record");
        assert!(UploadResponse::parse(b"<html>").is_none());
    }

    fn envelope(key: &str, items: &[&[u8]]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut envelope = Envelope::new(key, 0);
        for item in items {
            envelope.push(item);
        }
        envelope.finish()
    }

    #[test]
    fn the_envelope_joins_records() {
        assert_eq!(
            envelope("d", &[b"{\"a\":1}", b"{\"b\":2}"]).0,
            b"{\"d\":[{\"a\":1},{\"b\":2}]}".to_vec()
        );
    }

    #[test]
    fn the_envelope_says_where_each_record_lies() {
        let records: [&[u8]; 3] = [b"{\"a\":1}", b"\"x\"", b"[]"];
        let (body, spans) = envelope("d", &records);
        assert_eq!(body, b"{\"d\":[{\"a\":1},\"x\",[]]}".to_vec());
        let back: Vec<&[u8]> = spans.iter().map(|s| &body[s.clone()]).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn a_delete_body_names_its_key_and_values() {
        let (body, _) = envelope("identity", &[b"\"a@x.com\"", b"42"]);
        let parsed: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(parsed, serde_json::json!({"identity": ["a@x.com", 42]}));
    }
}
