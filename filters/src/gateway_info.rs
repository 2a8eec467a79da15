//! `GatewayInfo`: answers OpenFaaS's `GET /system/info` itself.
//!
//! ```yaml
//! - name: GatewayInfo
//!   args:
//!     provider: http://127.0.0.1:8081/
//!     basic-auth: true                       # send the credentials to the provider
//!     user-file: /run/secrets/basic-auth-user
//!     password-file: /run/secrets/basic-auth-password
//! ```
//! The answer has the OpenFaaS gateway's shape:
//! `{"provider": <the provider's GET system/info>, "version": {"commit_message", "sha",
//! "release"}, "arch": "amd64"}`, where `version` is weir's and `arch` is named as Go names it.
//! When the provider cannot be reached or answers something other than JSON, `provider` is
//! `null` and the answer is still 200.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::faas::Provider;
use crate::{
    ArgError, Args, Body, Exchange, Filter, FilterContext, FilterFactory, HttpService, LayerFilter,
    Shortcut,
};

/// weir's version, as `version.release` reports it.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

/// The architecture under Go's name (`GOARCH`), which OpenFaaS clients expect.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Builds [`GatewayInfo`].
pub struct GatewayInfoFactory;

impl FilterFactory for GatewayInfoFactory {
    fn name(&self) -> &'static str {
        "GatewayInfo"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["provider"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        Ok(Filter::Layer(Arc::new(GatewayInfo {
            provider: Arc::new(Provider::from_args(args, ctx)?),
        })))
    }
}

/// The layer: answers without calling the rest of the chain.
pub struct GatewayInfo {
    provider: Arc<Provider>,
}

impl GatewayInfo {
    async fn answer(provider: &Provider) -> Response<Body> {
        let from_provider = match provider.call(Method::GET, "system/info", None).await {
            Ok((StatusCode::OK, body)) => {
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)
            }
            Ok((status, _)) => {
                tracing::debug!(
                    status = status.as_u16(),
                    "the provider's /system/info failed"
                );
                Value::Null
            }
            Err(e) => {
                tracing::debug!("the provider's /system/info: {e}");
                Value::Null
            }
        };
        let info = json!({
            "provider": from_provider,
            "version": {
                "commit_message": format!("weir {RELEASE}"),
                "sha": option_env!("WEIR_GIT_SHA").unwrap_or("unknown"),
                "release": RELEASE,
            },
            "arch": go_arch(),
        });
        crate::json_response(StatusCode::OK, &info)
    }
}

impl LayerFilter for GatewayInfo {
    fn layer(&self, _inner: HttpService) -> HttpService {
        let provider = self.provider.clone();
        HttpService::from_fn(move |_: Exchange| {
            let provider = provider.clone();
            async move { GatewayInfo::answer(&provider).await }
        })
    }
}
