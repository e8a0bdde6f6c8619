//! [`ColdUrl`]: where the archive lives, as a flag or an environment variable names it, and
//! how its blob store is opened.
//!
//! Accepted forms (surrounding whitespace ignored):
//!
//! * `file://<dir>`: a local directory, relative (`file://storage/cold`) or absolute
//!   (`file:///var/lib/strata/cold`), opened as a [`FileStore`].
//! * `s3://bucket[/prefix]`: an S3 bucket, opened as an [`S3Store`]; credentials come from
//!   the AWS environment, never from the URL.
//! * `none` (or `off`): no cold tier.
//!
//! Invariant: this module holds the one parser of these URLs and the one redactor
//! ([`redact_url`]). A `ColdUrl` never keeps the userinfo of a URL (`s3://key:secret@…`),
//! only the fact that there was one, so neither its [`Display`](std::fmt::Display), its
//! `Debug`, a parse error nor an open error can echo a secret.

use std::{
    borrow::Cow,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use strata_core::{Error, Result, Tier, cold::BlobStore};

use crate::{FileStore, S3Options, S3Store};

/// What the redactor puts in place of a URL's userinfo.
const REDACTED: &str = "***";

/// Where the archive lives: `file://<dir>`, `s3://bucket[/prefix]` or `none`.
///
/// ```
/// use strata_cold::ColdUrl;
///
/// let url: ColdUrl = "s3://AKIA:hunter2@my-bucket/strata".parse().unwrap();
/// assert_eq!(url.to_string(), "s3://***@my-bucket/strata");
/// assert_eq!("none".parse::<ColdUrl>().unwrap(), ColdUrl::Disabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColdUrl {
    /// `file://<dir>`: a local directory (relative paths allowed).
    File(PathBuf),
    /// `s3://bucket[/prefix]`.
    S3(S3Url),
    /// `none`: no cold tier.
    Disabled,
}

/// The bucket and key prefix of an `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Url {
    bucket: String,
    /// Everything after the bucket, as written (empty, or starting with `/`).
    path: String,
    /// Whether the URL carried userinfo (which is dropped, never kept).
    had_userinfo: bool,
}

impl S3Url {
    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/` (empty for the bucket's root).
    pub fn prefix(&self) -> &str {
        self.path.trim_matches('/')
    }

    /// Whether the URL carried userinfo (`s3://user:secret@bucket`). It is not kept, and
    /// [`ColdUrl::open`] refuses such a URL: credentials come from the AWS environment.
    pub fn had_userinfo(&self) -> bool {
        self.had_userinfo
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("s3://")?;
        if self.had_userinfo {
            write!(f, "{REDACTED}@")?;
        }
        write!(f, "{}{}", self.bucket, self.path)
    }
}

/// Why a string is not a [`ColdUrl`]. Its message never contains the userinfo of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdUrlError(String);

impl fmt::Display for ColdUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ColdUrlError {}

impl FromStr for ColdUrl {
    type Err = ColdUrlError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        if matches!(s, "none" | "off") {
            return Ok(Self::Disabled);
        }
        if let Some(dir) = s.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(ColdUrlError(
                    "`file://` needs a directory, e.g. `file://storage/cold`".into(),
                ));
            }
            return Ok(Self::File(PathBuf::from(dir)));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            let (had_userinfo, bucket) = match authority.rsplit_once('@') {
                Some((_, bucket)) => (true, bucket),
                None => (false, authority),
            };
            if bucket.is_empty() {
                return Err(ColdUrlError(
                    "`s3://` needs a bucket, e.g. `s3://my-bucket/strata`".into(),
                ));
            }
            return Ok(Self::S3(S3Url {
                bucket: bucket.to_owned(),
                path: path.to_owned(),
                had_userinfo,
            }));
        }
        Err(ColdUrlError(format!(
            "expected `file://<dir>`, `s3://bucket/prefix` or `none`, got `{}`",
            redact_url(s)
        )))
    }
}

impl fmt::Display for ColdUrl {
    /// The URL as it was given, except that userinfo shows as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(dir) => write!(f, "file://{}", dir.display()),
            Self::S3(s3) => s3.fmt(f),
            Self::Disabled => f.write_str("none"),
        }
    }
}

impl ColdUrl {
    /// The embedded default: the directory `cold` inside a node's data directory
    /// (`file://<data-dir>/cold`), so every tier of a plain node lives under one directory.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::File(data_dir.join("cold"))
    }

    /// Whether this is `none`: no cold tier.
    pub fn is_disabled(&self) -> bool {
        matches!(self, Self::Disabled)
    }

    /// Opens the blob store this URL names; `None` for `none`. Nothing is written: a
    /// `file://` directory is created when missing, an S3 bucket must exist. `s3` applies to
    /// `s3://` URLs only.
    pub async fn open(&self, s3: &S3Options) -> Result<Option<Arc<dyn BlobStore>>> {
        match self {
            Self::File(dir) => {
                let dir = dir.clone();
                let store = tokio::task::spawn_blocking(move || FileStore::open(dir))
                    .await
                    .map_err(|e| Error::storage(Tier::Cold, "open", e))??;
                tracing::info!(root = %store.root().display(), "cold tier: local directory");
                Ok(Some(Arc::new(store)))
            }
            Self::S3(url) => {
                let store = S3Store::open_url(url, s3.clone()).await?;
                tracing::info!(bucket = store.bucket(), "cold tier: S3");
                Ok(Some(Arc::new(store)))
            }
            Self::Disabled => Ok(None),
        }
    }
}

/// Opens the blob store `url` names: `file://<dir>` (relative paths allowed) or
/// `s3://bucket[/prefix]`. The string form of [`ColdUrl::open`]; `none` is refused here,
/// since there is no store to return.
pub async fn open_blob_store(url: &str, s3: &S3Options) -> Result<Arc<dyn BlobStore>> {
    let parsed: ColdUrl = url
        .parse()
        .map_err(|e| Error::storage(Tier::Cold, "open", e))?;
    parsed.open(s3).await?.ok_or_else(|| {
        Error::storage(
            Tier::Cold,
            "open",
            format!(
                "`{parsed}` names no cold tier: expected `file://<dir>` or `s3://bucket/prefix`"
            ),
        )
    })
}

/// `url` with the userinfo of its authority (`scheme://user:secret@host/…`) replaced by
/// `***`; anything else unchanged. For showing URLs people typed in logs and errors.
///
/// ```
/// assert_eq!(
///     strata_cold::redact_url("https://user:pw@minio.local:9000/x"),
///     "https://***@minio.local:9000/x"
/// );
/// assert_eq!(strata_cold::redact_url("file://storage/cold"), "file://storage/cold");
/// ```
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!("{}{REDACTED}{}", &url[..start], &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> std::result::Result<ColdUrl, String> {
        s.parse::<ColdUrl>().map_err(|e| e.to_string())
    }

    fn s3(s: &str) -> S3Url {
        match parse(s) {
            Ok(ColdUrl::S3(u)) => u,
            other => panic!("{s}: expected an s3 URL, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(
            parse("file://storage/cold"),
            Ok(ColdUrl::File("storage/cold".into()))
        );
        assert_eq!(
            parse("file:///var/lib/strata/cold"),
            Ok(ColdUrl::File("/var/lib/strata/cold".into()))
        );
        assert_eq!(parse("file://./x"), Ok(ColdUrl::File("./x".into())));
        assert_eq!(parse("none"), Ok(ColdUrl::Disabled));
        assert_eq!(parse("off"), Ok(ColdUrl::Disabled));
        assert_eq!(
            parse("  none \n"),
            Ok(ColdUrl::Disabled),
            "whitespace is trimmed"
        );
        let u = s3("s3://bucket/prefix");
        assert_eq!(
            (u.bucket(), u.prefix(), u.had_userinfo()),
            ("bucket", "prefix", false)
        );
        let u = s3("s3://bucket");
        assert_eq!((u.bucket(), u.prefix()), ("bucket", ""));
        let u = s3("s3://bucket//a/b/");
        assert_eq!((u.bucket(), u.prefix()), ("bucket", "a/b"));
        // Bucket naming rules are the store's business, at open time.
        assert_eq!(s3("s3://ab").bucket(), "ab");
    }

    #[test]
    fn refuses_with_the_messages_people_see() {
        assert_eq!(
            parse("file://"),
            Err("`file://` needs a directory, e.g. `file://storage/cold`".into())
        );
        assert_eq!(
            parse("s3://"),
            Err("`s3://` needs a bucket, e.g. `s3://my-bucket/strata`".into())
        );
        assert_eq!(
            parse("s3:///prefix"),
            Err("`s3://` needs a bucket, e.g. `s3://my-bucket/strata`".into())
        );
        assert_eq!(
            parse("ftp://x"),
            Err("expected `file://<dir>`, `s3://bucket/prefix` or `none`, got `ftp://x`".into())
        );
        for bad in ["", "None", "storage/cold", "S3://bucket", "file:/x"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn display_round_trips_what_was_given() {
        for s in [
            "file://storage/cold",
            "file:///abs/dir/",
            "s3://bucket",
            "s3://bucket/",
            "s3://bucket/prefix/deeper",
            "none",
        ] {
            let url: ColdUrl = s.parse().unwrap();
            assert_eq!(url.to_string(), s);
            assert_eq!(url.to_string().parse::<ColdUrl>().unwrap(), url);
        }
        assert_eq!(ColdUrl::Disabled.to_string(), "none");
        assert_eq!(
            ColdUrl::in_data_dir(Path::new("node-a")).to_string(),
            "file://node-a/cold"
        );
        assert!("off".parse::<ColdUrl>().unwrap().is_disabled());
    }

    #[test]
    fn userinfo_is_never_echoed() {
        let secret = "hunter2";
        let url: ColdUrl = format!("s3://AKIAEXAMPLE:{secret}@my-bucket/strata")
            .parse()
            .unwrap();
        let ColdUrl::S3(u) = &url else {
            panic!("not s3: {url:?}")
        };
        assert_eq!((u.bucket(), u.prefix()), ("my-bucket", "strata"));
        assert!(u.had_userinfo());
        for shown in [url.to_string(), format!("{url:?}"), format!("{u}")] {
            assert!(!shown.contains(secret), "leaked: {shown}");
            assert!(!shown.contains("AKIAEXAMPLE"), "leaked: {shown}");
        }
        assert_eq!(url.to_string(), "s3://***@my-bucket/strata");
        // A user name alone, and an `@` in the secret itself.
        assert_eq!(
            "s3://user@b/p".parse::<ColdUrl>().unwrap().to_string(),
            "s3://***@b/p"
        );
        assert_eq!(
            "s3://k:a@b@bucket".parse::<ColdUrl>().unwrap().to_string(),
            "s3://***@bucket"
        );
        // A refused URL's error does not echo it either.
        let err = parse(&format!("ftp://u:{secret}@host/x")).unwrap_err();
        assert!(!err.contains(secret), "leaked: {err}");
        assert!(err.contains("ftp://***@host/x"), "{err}");
        let err = parse(&format!("s3://u:{secret}@")).unwrap_err();
        assert!(!err.contains(secret), "leaked: {err}");
    }

    #[test]
    fn redactor_touches_only_the_authority() {
        assert_eq!(redact_url("s3://k:s@bucket/p"), "s3://***@bucket/p");
        assert_eq!(redact_url("http://u:p@h:9000"), "http://***@h:9000");
        assert_eq!(
            redact_url("http://h/a@b"),
            "http://h/a@b",
            "`@` in the path"
        );
        assert_eq!(
            redact_url("http://h?x=a@b"),
            "http://h?x=a@b",
            "`@` in the query"
        );
        assert_eq!(
            redact_url("user:pw@host"),
            "user:pw@host",
            "no scheme, no authority"
        );
        assert!(matches!(redact_url("s3://bucket/p"), Cow::Borrowed(_)));
    }

    #[tokio::test]
    async fn opens_a_directory_and_refuses_credentials_and_none() {
        let dir = tempfile::tempdir().unwrap();
        let url: ColdUrl = format!("file://{}", dir.path().join("cold").display())
            .parse()
            .unwrap();
        let store = url.open(&S3Options::default()).await.unwrap().unwrap();
        assert_eq!(store.describe(), url.to_string());
        assert!(dir.path().join("cold").is_dir(), "created when missing");
        assert!(
            ColdUrl::Disabled
                .open(&S3Options::default())
                .await
                .unwrap()
                .is_none()
        );
        let err = open_blob_store("none", &S3Options::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no cold tier"), "{err}");
        let err = open_blob_store("s3://AKIA:hunter2@bucket/x", &S3Options::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("hunter2") && !err.contains("AKIA"),
            "leaked: {err}"
        );
        assert!(err.contains("AWS environment"), "{err}");
        let err = open_blob_store("ftp://u:hunter2@x", &S3Options::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "leaked: {err}");
    }
}
