//! Repairs the unambiguous ways raw placeholder substitution breaks Advanced-mode JSON bodies.

/// Advanced-mode bodies are built by raw placeholder substitution and may be invalid JSON.
/// Repairs only what is unambiguous: raw control characters (newlines, tabs) inside strings are
/// escaped, and an empty value where a value belongs (`"Amount": ,` or `"Amount": }`) becomes
/// `null`, which mapping then treats as absent. A stray unescaped quote inside a string
/// (`"Name":"Dwayne "The Rock""`) is ambiguous and is not repaired.
///
/// Returns Some(bytes) only when the result parses as JSON (a body that already parses comes
/// back unchanged); None otherwise.
pub fn repair_json(raw: &[u8]) -> Option<Vec<u8>> {
    if serde_json::from_slice::<serde_json::Value>(raw).is_ok() {
        return Some(raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut after_colon = false;
    for &byte in raw {
        if in_string {
            if escaped {
                escaped = false;
                out.push(byte);
            } else if byte == b'\\' {
                escaped = true;
                out.push(byte);
            } else if byte == b'"' {
                in_string = false;
                out.push(byte);
            } else if byte < 0x20 {
                push_escaped_control(&mut out, byte);
            } else {
                out.push(byte);
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                after_colon = false;
            }
            b':' => after_colon = true,
            b',' | b'}' if after_colon => {
                out.extend_from_slice(b"null");
                after_colon = false;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => after_colon = false,
        }
        out.push(byte);
    }
    serde_json::from_slice::<serde_json::Value>(&out)
        .is_ok()
        .then_some(out)
}

fn push_escaped_control(out: &mut Vec<u8>, byte: u8) {
    match byte {
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        other => out.extend_from_slice(format!("\\u{other:04x}").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parsed(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn repairs_only_the_unambiguous_samples() {
        let cases: [(&str, &str, Option<serde_json::Value>); 6] = [
            (
                "3.7 stray quote is ambiguous",
                include_str!("../../tests/fixtures/3.7.txt"),
                None,
            ),
            (
                "3.8 raw newline escaped",
                include_str!("../../tests/fixtures/3.8.txt"),
                Some(
                    json!({"d":[{"objectId":"mei.lin@example.com","type":"profile","profileData":{"Name":"Mei\n","Email":"mei.lin@example.com","Phone":"","Lead Source":"Import"}}]}),
                ),
            ),
            (
                "3.9 empty value becomes null",
                include_str!("../../tests/fixtures/3.9.txt"),
                Some(
                    json!({"d":[{"identity":"amelia.hart@example.com","type":"event","evtName":"Deal Won","evtData":{"Deal":"Hart renewal","Amount":null,"Stage":"Won"}}]}),
                ),
            ),
            (
                "empty value before }",
                "{\"a\":1,\"b\": }",
                Some(json!({"a":1,"b":null})),
            ),
            (
                "tab inside string",
                "{\"a\":\"x\ty\"}",
                Some(json!({"a":"x\ty"})),
            ),
            ("truncated body", "{\"a\":", None),
        ];
        for (name, raw, want) in cases {
            let got = repair_json(raw.as_bytes()).map(|b| parsed(&b));
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn valid_json_comes_back_unchanged() {
        for (name, raw) in [
            ("3.5 body", include_str!("../../tests/fixtures/3.5.json")),
            ("escaped colon comma in string", r#"{"a":": ,","b":[1,2]}"#),
            ("unicode", r#"{"n":"Zoë 🚀","e":"\u0026"}"#),
        ] {
            assert_eq!(
                repair_json(raw.as_bytes()).as_deref(),
                Some(raw.as_bytes()),
                "case {name}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_output_parses(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Some(out) = repair_json(&bytes) {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
            }
        }

        #[test]
        fn never_panics_on_json_like_text(text in r#"[{}\[\]:," a-z0-9\n\t\\]{0,80}"#) {
            if let Some(out) = repair_json(text.as_bytes()) {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
            }
        }
    }
}
