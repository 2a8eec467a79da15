//! The queued message, in the JSON layout of OpenFaaS's queue request (faas-provider
//! `QueueRequest`, MIT), so that an existing OpenFaaS queue worker could consume it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One accepted async invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueueRequest {
    /// Request headers (each name with all its values), including `X-Call-Id`.
    #[serde(rename = "Header", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    /// The `Host` the client asked for.
    #[serde(rename = "Host", default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The request body (base64 in JSON, as Go encodes `[]byte`).
    #[serde(
        rename = "Body",
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "base64_bytes"
    )]
    pub body: Vec<u8>,
    /// Always `POST`.
    #[serde(rename = "Method", default)]
    pub method: String,
    /// The path after the function name (`/async-function/f/a/b` gives `/a/b`; may be empty).
    #[serde(rename = "Path", default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The raw query string.
    #[serde(
        rename = "QueryString",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub query_string: String,
    /// The function, `name` or `name.namespace`.
    #[serde(rename = "Function", default)]
    pub function: String,
    /// The queue's name, when not the default.
    #[serde(
        rename = "QueueName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub queue_name: String,
    /// Where to post the result.
    #[serde(
        rename = "CallbackUrl",
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "go_url::serialize",
        deserialize_with = "go_url::deserialize"
    )]
    pub callback_url: Option<String>,
}

impl QueueRequest {
    /// The call id, when the request carried one.
    pub fn call_id(&self) -> Option<&str> {
        self.header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-call-id"))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }
}

mod base64_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// Go's `url.URL` as `encoding/json` writes it: an object of its fields.
mod go_url {
    use super::*;

    #[derive(Serialize, Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct GoUrl {
        #[serde(default)]
        scheme: String,
        #[serde(default)]
        opaque: String,
        #[serde(default)]
        user: Option<serde_json::Value>,
        #[serde(default)]
        host: String,
        #[serde(default)]
        path: String,
        #[serde(default)]
        raw_path: String,
        #[serde(default)]
        omit_host: bool,
        #[serde(default)]
        force_query: bool,
        #[serde(default)]
        raw_query: String,
        #[serde(default)]
        fragment: String,
        #[serde(default)]
        raw_fragment: String,
    }

    pub fn serialize<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        let Some(url) = url else {
            return s.serialize_none();
        };
        let uri: http::Uri = url.parse().map_err(serde::ser::Error::custom)?;
        GoUrl {
            scheme: uri.scheme_str().unwrap_or_default().to_string(),
            host: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
            path: uri.path().to_string(),
            raw_query: uri.query().unwrap_or_default().to_string(),
            ..GoUrl::default()
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let Some(url) = Option::<GoUrl>::deserialize(d)? else {
            return Ok(None);
        };
        if url.host.is_empty() {
            return Ok(None);
        }
        let query = if url.raw_query.is_empty() {
            String::new()
        } else {
            format!("?{}", url.raw_query)
        };
        Ok(Some(format!(
            "{}://{}{}{query}",
            url.scheme, url.host, url.path
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_openfaas_layout() {
        let mut header = BTreeMap::new();
        header.insert("X-Call-Id".to_string(), vec!["abc".to_string()]);
        let request = QueueRequest {
            header,
            host: "gw:8080".into(),
            body: b"hello".to_vec(),
            method: "POST".into(),
            path: "/a/b".into(),
            query_string: "x=1".into(),
            function: "echo.openfaas-fn".into(),
            queue_name: String::new(),
            callback_url: Some("http://cb.local:9000/done?k=v".into()),
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["Body"], "aGVsbG8=");
        assert_eq!(json["CallbackUrl"]["Host"], "cb.local:9000");
        assert_eq!(json["CallbackUrl"]["RawQuery"], "k=v");
        assert_eq!(json["Header"]["X-Call-Id"][0], "abc");
        let back: QueueRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
        assert_eq!(back.call_id(), Some("abc"));
    }
}
