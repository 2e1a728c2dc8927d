//! Invoice documents in S3: a private bucket, objects keyed by organization and invoice, read
//! through short-lived presigned URLs (the API's `file_url`).

use std::time::Duration;

use aws_sdk_s3::{Client, presigning::PresigningConfig, primitives::ByteStream};

use crate::{StoreError, infra::BUCKETS};

/// How long a `file_url` stays valid.
pub const PRESIGNED_URL_TTL: Duration = Duration::from_secs(3600);

/// The key of an invoice's PDF: under its organization, so one tenant's keys never name
/// another's documents.
pub fn invoice_document_key(org_id: &str, invoice_id: &str) -> String {
    format!("{org_id}/invoices/{invoice_id}.pdf")
}

/// The documents bucket adapter.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    client: Client,
    bucket: String,
}

fn client(sdk: &aws_config::SdkConfig) -> Client {
    // An endpoint override (the local emulator) serves buckets by path, not by host name.
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl DocumentStore {
    /// A store over `bucket`.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self {
            client: client(sdk),
            bucket: bucket.into(),
        }
    }

    /// Stores a PDF under `key` (overwriting: a document is rendered from an immutable,
    /// finalized invoice, so a re-render writes the same content).
    pub async fn put_pdf(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.put(key, "application/pdf", bytes).await
    }

    /// Stores a JSON document under `key` (overwriting).
    pub async fn put_json(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.put(key, "application/json", bytes).await
    }

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Reads a document.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        let bytes = out.body.collect().await.map_err(unavailable)?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// A URL that reads the document for [`PRESIGNED_URL_TTL`].
    pub async fn presigned_url(&self, key: &str) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(PRESIGNED_URL_TTL).map_err(unavailable)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| unavailable(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(request.uri().to_owned())
    }
}

/// Creates the stack's buckets under `prefix` (idempotent); returns `(env var, name)` pairs.
pub(crate) async fn provision_buckets(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    let s3 = client(sdk);
    let mut out = Vec::new();
    for spec in BUCKETS {
        let name = format!("{prefix}-{}", spec.name_suffix);
        if s3.head_bucket().bucket(&name).send().await.is_err() {
            s3.create_bucket()
                .bucket(&name)
                .send()
                .await
                .map_err(|e| format!("{name}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        }
        out.push((spec.env_var, name));
    }
    Ok(out)
}
