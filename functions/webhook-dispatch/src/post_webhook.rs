//! The HTTP client that POSTs webhooks: hyper over rustls with aws-lc-rs, the stack the AWS SDKs
//! already build, trusting the system's root certificates. Connecting and the whole exchange
//! are time-bounded, redirects are not followed (a 3xx is a failed delivery, as in lago-api),
//! and the response body is never read.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Why a POST got no answer. Never carries the URL, which may hold a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The URL or a header could not make a request.
    #[error("invalid request")]
    Invalid,
    /// No connection could be made.
    #[error("could not connect")]
    Connect,
    /// No answer within the delivery timeout.
    #[error("timed out")]
    TimedOut,
    /// The exchange failed after connecting.
    #[error("request failed")]
    Failed,
}

/// A webhook HTTP client. Cheap to clone: the connection pool is shared.
#[derive(Clone)]
pub struct WebhookClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client that gives up connecting after `connect_timeout` and on the whole exchange
    /// after `timeout`. Fails if the system has no root certificates.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> std::io::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(
                Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            )?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
        })
    }

    /// POSTs `body` to `url` with `headers`; the status code of the answer.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<u16, PostError> {
        let uri: http::Uri = url.parse().map_err(|_| PostError::Invalid)?;
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|_| PostError::Invalid)?;
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(PostError::TimedOut),
            Ok(Err(e)) if e.is_connect() => Err(PostError::Connect),
            Ok(Err(_)) => Err(PostError::Failed),
            Ok(Ok(response)) => Ok(response.status().as_u16()),
        }
    }
}
