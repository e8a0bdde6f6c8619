//! The S3 blob store (`s3://bucket/prefix`) on aws-sdk-s3.
//!
//! Endpoint, region and credentials come from the standard AWS chain (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, instance roles) unless
//! [`S3Options`] names them. Every upload carries its SHA-256 as the S3 checksum, so the
//! server refuses bytes that changed on the way; bodies above the multipart threshold go up
//! in parts (each with its own checksum) and a failed multipart upload is aborted. Deletes
//! remove every version of the key, so on a bucket with Object Lock a retained or held
//! version refuses the delete instead of being hidden behind a delete marker.

use std::{ops::Range, path::Path, sync::Arc};

use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    primitives::{ByteStream, DateTime},
    types::{
        ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockLegalHold,
        ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    },
};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use strata_core::{
    Error, Result, Tier,
    cold::{BlobStore, ObjectMeta, PutOptions, Retention, RetentionMode, check_key},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cold_url::{ColdUrl, S3Url};

/// Settings of the S3 store beyond the URL.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Endpoint URL (e.g. a local S3-compatible server); `None` uses the AWS chain
    /// (`AWS_ENDPOINT_URL`) or AWS itself.
    pub endpoint: Option<String>,
    /// Region; `None` uses the AWS chain, falling back to `us-east-1`.
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (most
    /// S3-compatible servers need this).
    pub force_path_style: bool,
    /// Bodies at least this large are uploaded in parts.
    pub multipart_threshold: usize,
    /// Size of each part (S3's minimum is 5 MiB, except the last).
    pub part_size: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: None,
            force_path_style: false,
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
        }
    }
}

/// A blob store in an S3 bucket under a key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: Arc<str>,
    /// Empty, or ending in `/`.
    prefix: Arc<str>,
    options: Arc<S3Options>,
}

fn s3_err<'a, E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    op: &'static str,
    key: &'a str,
) -> impl Fn(SdkError<E>) -> Error + 'a {
    move |e| {
        let message = format!("`{key}`: {}", DisplayErrorContext(&e));
        match e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Error::Unavailable {
                tier: Tier::Cold,
                op,
                message,
            },
            _ => Error::storage(Tier::Cold, op, message),
        }
    }
}

fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn datetime(micros: i64) -> DateTime {
    DateTime::from_millis(micros.div_euclid(1000))
}

fn micros(dt: Option<&DateTime>) -> i64 {
    dt.and_then(|d| d.to_millis().ok())
        .map_or(0, |ms| ms.saturating_mul(1000))
}

fn lock_mode(mode: RetentionMode) -> (ObjectLockMode, ObjectLockRetentionMode) {
    match mode {
        RetentionMode::Governance => (
            ObjectLockMode::Governance,
            ObjectLockRetentionMode::Governance,
        ),
        RetentionMode::Compliance => (
            ObjectLockMode::Compliance,
            ObjectLockRetentionMode::Compliance,
        ),
    }
}

impl S3Store {
    /// Opens `s3://bucket[/prefix]` with `options`.
    pub async fn open(url: &str, options: S3Options) -> Result<Self> {
        match url.parse::<ColdUrl>() {
            Ok(ColdUrl::S3(s3)) => Self::open_url(&s3, options).await,
            Ok(other) => Err(Error::storage(
                Tier::Cold,
                "open",
                format!("`{other}` is not an s3:// URL"),
            )),
            Err(e) => Err(Error::storage(Tier::Cold, "open", e)),
        }
    }

    /// Opens the bucket and prefix of a parsed `s3://` URL with `options`. A URL that carried
    /// credentials is refused: they come from the AWS environment.
    pub(crate) async fn open_url(url: &S3Url, options: S3Options) -> Result<Self> {
        if url.had_userinfo() {
            return Err(Error::storage(
                Tier::Cold,
                "open",
                format!(
                    "`{url}`: credentials in the URL are not used; give them through the AWS \
                     environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or an \
                     instance role)"
                ),
            ));
        }
        let bucket = url.bucket();
        if bucket.len() < 3 {
            return Err(Error::storage(
                Tier::Cold,
                "open",
                format!("`{url}`: a bucket name has at least 3 characters"),
            ));
        }
        let prefix = url.prefix();
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if let Some(endpoint) = &options.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(options.force_path_style);
        if shared.region().is_none() {
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        Ok(Self {
            client: Client::from_conf(config.build()),
            bucket: bucket.into(),
            prefix: if prefix.is_empty() {
                "".into()
            } else {
                format!("{prefix}/").into()
            },
            options: Arc::new(options),
        })
    }

    /// The SDK client (tests use it to create buckets).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    async fn put_small(
        &self,
        full: &str,
        body: Bytes,
        sha: &[u8],
        options: &PutOptions,
    ) -> Result<()> {
        let mut req = self
            .client
            .put_object()
            .bucket(&*self.bucket)
            .key(full)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(encode_base64(sha))
            .body(ByteStream::from(body));
        if let Some(r) = options.retention {
            req = req
                .object_lock_mode(lock_mode(r.mode).0)
                .object_lock_retain_until_date(datetime(r.retain_until));
        }
        if options.legal_hold {
            req = req.object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
        }
        req.send().await.map_err(s3_err("put", full))?;
        Ok(())
    }

    /// Uploads parts produced by `next_part` (each at most `part_size`), aborting the
    /// upload on any failure so no parts linger.
    async fn put_multipart<F, Fut>(
        &self,
        full: &str,
        options: &PutOptions,
        mut next_part: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Bytes>>>,
    {
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&*self.bucket)
            .key(full)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(r) = options.retention {
            req = req
                .object_lock_mode(lock_mode(r.mode).0)
                .object_lock_retain_until_date(datetime(r.retain_until));
        }
        if options.legal_hold {
            req = req.object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
        }
        let created = req.send().await.map_err(s3_err("put", full))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let mut parts = Vec::new();
            let mut number = 1i32;
            while let Some(part) = next_part().await? {
                let sha = encode_base64(&Sha256::digest(&part));
                let out = self
                    .client
                    .upload_part()
                    .bucket(&*self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .checksum_sha256(&sha)
                    .body(ByteStream::from(part))
                    .send()
                    .await
                    .map_err(s3_err("put part", full))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .checksum_sha256(out.checksum_sha256().unwrap_or(&sha))
                        .build(),
                );
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&*self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(s3_err("complete upload", full))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&*self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(key = full, error = %DisplayErrorContext(&e), "aborting a failed multipart upload failed");
            }
        }
        result
    }

    fn check_sha(key: &str, got: &[u8], options: &PutOptions) -> Result<()> {
        if let Some(want) = &options.sha256 {
            let got = hex::encode(got);
            if !got.eq_ignore_ascii_case(want) {
                return Err(Error::storage(
                    Tier::Cold,
                    "put",
                    format!("checksum mismatch for `{key}`: expected {want}, got {got}"),
                ));
            }
        }
        Ok(())
    }

    async fn head_full(&self, full: &str) -> Result<Option<(ObjectMeta, Option<String>)>> {
        match self
            .client
            .head_object()
            .bucket(&*self.bucket)
            .key(full)
            .send()
            .await
        {
            Ok(out) => Ok(Some((
                ObjectMeta {
                    key: full[self.prefix.len()..].to_owned(),
                    size: out.content_length().unwrap_or(0).max(0) as u64,
                    last_modified: micros(out.last_modified()),
                },
                out.version_id().map(str::to_owned),
            ))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_err("head", full)(e)),
        }
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> Result<ObjectMeta> {
        let full = self.full_key(key)?;
        let sha = Sha256::digest(&body);
        Self::check_sha(key, &sha, options)?;
        let size = body.len() as u64;
        if body.len() >= self.options.multipart_threshold.max(1) {
            let part_size = self.options.part_size.max(5 * 1024 * 1024);
            let mut at = 0usize;
            self.put_multipart(&full, options, || {
                let part = (at < body.len()).then(|| {
                    let end = (at + part_size).min(body.len());
                    let p = body.slice(at..end);
                    at = end;
                    p
                });
                async move { Ok(part) }
            })
            .await?;
        } else {
            self.put_small(&full, body, &sha, options).await?;
        }
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
            last_modified: strata_types::time::now_micros(),
        })
    }

    async fn put_file(&self, key: &str, path: &Path, options: &PutOptions) -> Result<ObjectMeta> {
        let full = self.full_key(key)?;
        let io = |e: std::io::Error| {
            Error::storage(Tier::Cold, "put_file", format!("{}: {e}", path.display()))
        };
        let size = tokio::fs::metadata(path).await.map_err(io)?.len();
        if size < self.options.multipart_threshold.max(1) as u64 {
            let body = Bytes::from(tokio::fs::read(path).await.map_err(io)?);
            return self.put(key, body, options).await;
        }
        if let Some(want) = &options.sha256 {
            let (got, _) = crate::sha256_file_async(path).await?;
            if !got.eq_ignore_ascii_case(want) {
                return Err(Error::storage(
                    Tier::Cold,
                    "put",
                    format!("checksum mismatch for `{key}`: expected {want}, got {got}"),
                ));
            }
        }
        let part_size = self.options.part_size.max(5 * 1024 * 1024);
        let file = Arc::new(tokio::sync::Mutex::new(
            tokio::fs::File::open(path).await.map_err(io)?,
        ));
        let path_text = path.display().to_string();
        self.put_multipart(&full, options, || {
            let file = Arc::clone(&file);
            let path_text = path_text.clone();
            async move {
                let mut f = file.lock().await;
                let mut buf = Vec::with_capacity(part_size);
                (&mut *f)
                    .take(part_size as u64)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|e| {
                        Error::storage(Tier::Cold, "put_file", format!("{path_text}: {e}"))
                    })?;
                Ok((!buf.is_empty()).then(|| Bytes::from(buf)))
            }
        })
        .await?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
            last_modified: strata_types::time::now_micros(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let full = self.full_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => {
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| Error::storage(Tier::Cold, "get", format!("`{full}`: {e}")))?;
                Ok(Some(body.into_bytes()))
            }
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_err("get", &full)(e)),
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Bytes>> {
        let full = self.full_key(key)?;
        if range.end <= range.start {
            return Ok(self.head_full(&full).await?.map(|_| Bytes::new()));
        }
        match self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(&full)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
        {
            Ok(out) => {
                let body = out.body.collect().await.map_err(|e| {
                    Error::storage(Tier::Cold, "get_range", format!("`{full}`: {e}"))
                })?;
                Ok(Some(body.into_bytes()))
            }
            Err(e) if status(&e) == Some(404) => Ok(None),
            // A range starting at or past the end: the object exists, the slice is empty.
            Err(e) if status(&e) == Some(416) => {
                Ok(self.head_full(&full).await?.map(|_| Bytes::new()))
            }
            Err(e) => Err(s3_err("get_range", &full)(e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let full = self.full_key(key)?;
        Ok(self.head_full(&full).await?.map(|(m, _)| m))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(s3_err("list", &full_prefix))?;
            for obj in page.contents() {
                let Some(key) = obj.key() else { continue };
                let Some(rel) = key.strip_prefix(&*self.prefix) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: rel.to_owned(),
                    size: obj.size().unwrap_or(0).max(0) as u64,
                    last_modified: micros(obj.last_modified()),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full_key(key)?;
        let Some((_, version)) = self.head_full(&full).await? else {
            return Ok(());
        };
        let versioned = version.as_deref().is_some_and(|v| v != "null");
        if !versioned {
            self.client
                .delete_object()
                .bucket(&*self.bucket)
                .key(&full)
                .send()
                .await
                .map_err(s3_err("delete", &full))?;
            return Ok(());
        }
        // Every version of exactly this key (and delete markers), newest first: removing
        // only the newest would bring back an older one.
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&*self.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(s3_err("delete", &full))?;
            for v in page.versions() {
                if v.key() == Some(full.as_str())
                    && let Some(id) = v.version_id()
                {
                    versions.push(id.to_owned());
                }
            }
            for m in page.delete_markers() {
                if m.key() == Some(full.as_str())
                    && let Some(id) = m.version_id()
                {
                    versions.push(id.to_owned());
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() && version_marker.is_none() {
                break;
            }
        }
        for id in versions {
            self.client
                .delete_object()
                .bucket(&*self.bucket)
                .key(&full)
                .version_id(id)
                .send()
                .await
                .map_err(s3_err("delete", &full))?;
        }
        Ok(())
    }

    async fn set_legal_hold(&self, key: &str, on: bool) -> Result<()> {
        let full = self.full_key(key)?;
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.client
            .put_object_legal_hold()
            .bucket(&*self.bucket)
            .key(&full)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
            .map_err(s3_err("set_legal_hold", &full))?;
        Ok(())
    }

    async fn set_retention(&self, key: &str, retention: &Retention) -> Result<()> {
        let full = self.full_key(key)?;
        self.client
            .put_object_retention()
            .bucket(&*self.bucket)
            .key(&full)
            .retention(
                ObjectLockRetention::builder()
                    .mode(lock_mode(retention.mode).1)
                    .retain_until_date(datetime(retention.retain_until))
                    .build(),
            )
            .send()
            .await
            .map_err(s3_err("set_retention", &full))?;
        Ok(())
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<bool> {
        let full = self.full_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if status(&e) == Some(404) => return Ok(false),
            Err(e) => return Err(s3_err("get", &full)(e)),
        };
        let io = |e: std::io::Error| {
            Error::storage(
                Tier::Cold,
                "get_to_file",
                format!("{}: {e}", path.display()),
            )
        };
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::storage(Tier::Cold, "get", format!("`{full}`: {e}")))?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(true)
    }
}

/// Base64 (standard, padded) of a digest, as the S3 checksum headers carry it.
fn encode_base64(digest: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(digest)
}
