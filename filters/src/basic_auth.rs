//! `BasicAuth`: lets a request through only with valid HTTP Basic credentials.
//!
//! ```yaml
//! - BasicAuth=/run/secrets/basic-auth-user, /run/secrets/basic-auth-password
//! - name: BasicAuth
//!   args:
//!     user-file: /run/secrets/basic-auth-user          # OpenFaaS's secret mount: one user
//!     password-file: /run/secrets/basic-auth-password
//!     realm: Restricted                                # default
//! - name: BasicAuth
//!   args:
//!     htpasswd: /etc/weir/htpasswd                     # or: users with bcrypt hashes
//! ```
//! The user and password files are trimmed, as OpenFaaS trims them. Both are compared in
//! constant time. An `htpasswd` file holds `user:hash` lines with bcrypt hashes (`htpasswd -B`).
//! The files are watched: a rotated secret takes effect without a restart. A missing file is a
//! config error naming it. A request without valid credentials is answered 401 with
//! `WWW-Authenticate: Basic realm="..."` and the body `invalid credentials`, as OpenFaaS answers;
//! the client's `Authorization` header then goes on unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{header, HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
    WatchedFile,
};

/// Builds [`BasicAuth`].
pub struct BasicAuthFactory;

impl FilterFactory for BasicAuthFactory {
    fn name(&self) -> &'static str {
        "BasicAuth"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["userFile", "passwordFile", "realm"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let realm = args.get("realm").map(str::trim).unwrap_or("Restricted");
        if realm.contains(['"', '\\']) || HeaderValue::from_str(realm).is_err() {
            return Err(ArgError::for_arg(
                "realm",
                "may not hold quotes, backslashes or control characters",
            ));
        }
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
            .map_err(|_| ArgError::for_arg("realm", "is not a valid header value"))?;
        let users = match (args.get("userFile"), args.get("passwordFile"), args.get("htpasswd")) {
            (Some(user), Some(password), None) => Users::Files {
                user: ctx.watched_file("userFile", user)?,
                password: ctx.watched_file("passwordFile", password)?,
            },
            (None, None, Some(file)) => {
                let file = ctx.watched_file("htpasswd", file)?;
                let parsed = Htpasswd::parse(&file.content())
                    .map_err(|e| ArgError::for_arg("htpasswd", format!("`{}`: {e}", file.path().display())))?;
                Users::Htpasswd {
                    cache: Mutex::new(HtpasswdCache {
                        version: file.version(),
                        parsed: Arc::new(parsed),
                        verified: HashMap::new(),
                    }),
                    file,
                }
            }
            (_, _, Some(_)) => {
                return Err(ArgError::new(
                    "give either `htpasswd` or `user-file` and `password-file`, not both",
                ))
            }
            _ => {
                return Err(ArgError::new(
                    "needs `user-file` and `password-file` (OpenFaaS's `basic-auth-user` and `basic-auth-password`), or `htpasswd`",
                ))
            }
        };
        Ok(Filter::Edit(Arc::new(BasicAuth { users, challenge })))
    }
}

/// The filter.
pub struct BasicAuth {
    users: Users,
    challenge: HeaderValue,
}

enum Users {
    /// One user, from two files.
    Files {
        user: Arc<WatchedFile>,
        password: Arc<WatchedFile>,
    },
    /// An htpasswd file.
    Htpasswd {
        file: Arc<WatchedFile>,
        cache: Mutex<HtpasswdCache>,
    },
}

/// How many verified credentials an htpasswd filter remembers, so that bcrypt (slow on
/// purpose) runs once per client and password rather than once per request.
const VERIFIED_CACHE: usize = 1024;

struct HtpasswdCache {
    version: u64,
    parsed: Arc<Htpasswd>,
    /// SHA-256 of `user:password` pairs that bcrypt accepted, for this version of the file.
    verified: HashMap<[u8; 32], ()>,
}

/// The users of an htpasswd file.
#[derive(Debug, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

/// A bcrypt hash of a password no one has, checked when the user is unknown so that an
/// unknown user takes as long as a wrong password.
const DUMMY_HASH: &str = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

impl Htpasswd {
    /// Parses `user:hash` lines; blank lines and `#` comments are skipped. Only bcrypt hashes
    /// (`$2y$`, `$2a$`, `$2b$`) are accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {}: expected `user:hash`", i + 1));
            };
            let hash = hash.trim();
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                return Err(format!(
                    "line {}: the hash of user `{user}` is not bcrypt; make it with `htpasswd -B`",
                    i + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err("no users".into());
        }
        Ok(Self { users })
    }

    /// Whether `user` has `password`.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, DUMMY_HASH);
                false
            }
        }
    }
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(exchange: &Exchange) -> Option<(String, String)> {
    use base64::Engine;
    let value = exchange.request.headers().get(header::AUTHORIZATION)?;
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl BasicAuth {
    fn allowed(&self, user: &str, password: &str) -> bool {
        match &self.users {
            Users::Files {
                user: user_file,
                password: password_file,
            } => {
                let (want_user, want_password) = (user_file.content(), password_file.content());
                let user_ok = user.as_bytes().ct_eq(want_user.trim().as_bytes());
                let password_ok = password.as_bytes().ct_eq(want_password.trim().as_bytes());
                (user_ok & password_ok).into()
            }
            Users::Htpasswd { file, cache } => {
                let key: [u8; 32] = Sha256::new()
                    .chain_update(user.as_bytes())
                    .chain_update(b":")
                    .chain_update(password.as_bytes())
                    .finalize()
                    .into();
                let parsed = {
                    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.version != file.version() {
                        cache.version = file.version();
                        cache.verified.clear();
                        match Htpasswd::parse(&file.content()) {
                            Ok(parsed) => cache.parsed = Arc::new(parsed),
                            Err(e) => tracing::error!(
                                file = %file.path().display(),
                                "the htpasswd file is invalid ({e}); the previous users stay"
                            ),
                        }
                    }
                    if cache.verified.contains_key(&key) {
                        return true;
                    }
                    cache.parsed.clone()
                };
                // bcrypt runs outside the lock.
                let ok = parsed.verify(user, password);
                if ok {
                    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.verified.len() >= VERIFIED_CACHE {
                        cache.verified.clear();
                    }
                    cache.verified.insert(key, ());
                }
                ok
            }
        }
    }
}

impl EditFilter for BasicAuth {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        if let Some((user, password)) = credentials(exchange) {
            if self.allowed(&user, &password) {
                return Ok(());
            }
        }
        let mut response = Response::new(Body::full("invalid credentials"));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        headers.insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Err(response)
    }

    fn edits_response(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_accepts_bcrypt_only() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let h = Htpasswd::parse(&format!("# users\n\nalice:{hash}\n")).unwrap();
        assert!(h.verify("alice", "s3cret"));
        assert!(!h.verify("alice", "nope"));
        assert!(!h.verify("bob", "s3cret"));
        assert!(Htpasswd::parse("bob:$apr1$abc$def")
            .unwrap_err()
            .contains("htpasswd -B"));
        assert!(Htpasswd::parse("nocolon").is_err());
        assert!(Htpasswd::parse("# empty\n").is_err());
        assert!(
            bcrypt::verify("x", DUMMY_HASH).is_ok(),
            "the dummy hash must be a valid hash"
        );
    }
}
