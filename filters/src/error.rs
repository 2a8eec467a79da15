use http::{header, HeaderValue, Response, StatusCode};

use crate::Body;

/// The fields of weir's JSON error body.
#[derive(Debug, Clone, Copy)]
pub struct ErrorBody<'a> {
    /// The status code.
    pub status: StatusCode,
    /// What went wrong, in a sentence that leaks no internal detail.
    pub message: &'a str,
    /// The request path.
    pub path: &'a str,
    /// The route that took the request, when one did.
    pub route: Option<&'a str>,
    /// The request id, as in the logs.
    pub request_id: u64,
}

/// A small JSON error response:
/// `{"status":502,"error":"Bad Gateway","message":"...","path":"/x","route":"r1","requestId":"..."}`.
///
/// Every error weir answers itself (no route, upstream failures, rejected requests) goes
/// through here so that they all look alike.
pub fn error_response(
    status: StatusCode,
    message: &str,
    path: &str,
    route: Option<&str>,
    request_id: u64,
) -> Response<Body> {
    ErrorBody {
        status,
        message,
        path,
        route,
        request_id,
    }
    .into_response()
}

impl ErrorBody<'_> {
    /// The response.
    pub fn into_response(self) -> Response<Body> {
        let mut json = serde_json::json!({
            "status": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
            "path": self.path,
            "requestId": format!("{:016x}", self.request_id),
        });
        if let Some(route) = self.route {
            json["route"] = serde_json::Value::from(route);
        }
        json_response(self.status, &json)
    }
}

/// A response with `status` and `value` as its JSON body.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
