//! Flag blocks and value parsers shared by several commands. A block used by one command
//! lives with that command (`serve::args`, `migrate`, `load`, ...).

mod limits;
mod warm;

use std::time::Duration;

pub use limits::{LimitsArgs, UnknownFieldsArg};
pub use warm::{LayoutArg, WarmArgs};

/// How long a tier keeps data: a duration, or forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<Duration>);

pub(crate) fn parse_retention(s: &str) -> Result<Retention, String> {
    match s.trim() {
        "off" | "none" | "forever" => Ok(Retention(None)),
        other => match parse_duration(other)? {
            // Zero would drop every row at the first pass: far more likely a mistake than a
            // wish, and `off` says the opposite.
            d if d.is_zero() => Err("expected a duration above zero, or `off`".into()),
            d => Ok(Retention(Some(d))),
        },
    }
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("expected a duration above zero".into()),
        d => Ok(d),
    }
}

pub(crate) fn parse_node_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if crate::node::valid(s) {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 64 characters of `a-z`, `A-Z`, `0-9`, `-` and `_`".into())
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("expected a duration such as `30s`, `15m` or `1h` ({e})"))
}

pub(crate) fn parse_human_duration(s: &str) -> Result<humantime::Duration, String> {
    parse_duration(s).map(Into::into)
}

pub(crate) fn parse_byte_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!("expected a byte size such as `65536`, `64KiB`, `512MiB` or `10GiB` ({e})")
        })
}

pub(crate) fn parse_byte_size_usize(s: &str) -> Result<usize, String> {
    let n = parse_byte_size(s)?;
    usize::try_from(n).map_err(|_| format!("{n} bytes is more than this machine can address"))
}

/// Parses a URL flag (`--warm`, `--cold`) with its type's one parser. Unlike clap's usual
/// message for a bad value, the error never repeats the value itself: it may hold a
/// password (the type's own message shows it redacted).
#[derive(Debug)]
pub(crate) struct SecretUrlParser<T>(std::marker::PhantomData<fn() -> T>);

impl<T> SecretUrlParser<T> {
    pub(crate) fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Clone for SecretUrlParser<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> clap::builder::TypedValueParser for SecretUrlParser<T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let name = arg.map_or_else(|| "the URL".to_owned(), ToString::to_string);
        let fail = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{name}': {reason}\n"),
            )
            .with_cmd(cmd)
        };
        let value = value
            .to_str()
            .ok_or_else(|| fail("the URL is not valid UTF-8".into()))?;
        value.parse::<T>().map_err(|e| fail(e.to_string()))
    }
}
