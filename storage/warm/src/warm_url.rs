//! [`WarmUrl`]: which warm tier to open, parsed once and never shown with its password.
//!
//! Three forms are accepted, the ones operators already write for PostgreSQL clients:
//!
//! * `embedded` (or `embedded:`): the embedded store under the data directory;
//! * a URL, `postgres://user:password@host:5432/db?sslmode=require` (or `postgresql://`);
//! * a libpq key=value string, `host=db user=strata password='s e c r e t' dbname=strata`.
//!
//! A PostgreSQL string is checked by the same parser that later connects with it, so a typo
//! fails when the flag is read, not on the first connection attempt. `Display`, `Debug` and
//! [`WarmUrl::redacted`] hide every password (the one in `user:password@`, `password=`
//! parameters of a URL, however percent-encoded their name, and `password=` of a key=value
//! string, quoted or not), and a parse error never repeats input that may hold one: only a
//! URL (which can be redacted) is quoted back, redacted.

use std::{fmt, ops::Range, str::FromStr};

/// Where the warm tier lives. See the module docs for the accepted forms.
#[derive(Clone, PartialEq, Eq)]
pub struct WarmUrl {
    /// The string as given (trimmed), password included: for connecting only.
    raw: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Embedded,
    Url,
    KeyValue,
}

/// Why a string is not a [`WarmUrl`]. Its message never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseWarmUrlError(String);

const EXPECTED: &str = "expected `embedded`, a URL such as \
                        `postgres://user:password@host:5432/db` or a key=value string such as \
                        `host=db user=strata dbname=strata`";

impl WarmUrl {
    /// The embedded store under the data directory.
    pub fn embedded() -> Self {
        Self {
            raw: "embedded".to_owned(),
            kind: Kind::Embedded,
        }
    }

    /// Whether this is the embedded store.
    pub fn is_embedded(&self) -> bool {
        self.kind == Kind::Embedded
    }

    /// Whether this names a PostgreSQL server (URL or key=value string).
    pub fn is_postgres(&self) -> bool {
        !self.is_embedded()
    }

    /// The string with its password, for connecting only; never log it.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The string with every password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        match self.kind {
            Kind::Embedded => self.raw.clone(),
            Kind::Url => hide(&self.raw, url_secrets(&self.raw)),
            Kind::KeyValue => match key_values(&self.raw) {
                Ok(params) => hide(
                    &self.raw,
                    params
                        .into_iter()
                        .filter(|p| is_secret(&self.raw[p.key.clone()]))
                        .map(|p| p.value)
                        .collect(),
                ),
                // Parsing checked the syntax, so this cannot happen; if it did, hide it all.
                Err(_) => "***".to_owned(),
            },
        }
    }
}

impl Default for WarmUrl {
    /// The embedded store, Strata's default.
    fn default() -> Self {
        Self::embedded()
    }
}

impl FromStr for WarmUrl {
    type Err = ParseWarmUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "embedded" || s == "embedded:" {
            return Ok(Self::embedded());
        }
        if s.starts_with("embedded:") {
            return Err(ParseWarmUrlError(
                "`embedded` takes no path: the embedded store is always `<data-dir>/warm.redb`"
                    .into(),
            ));
        }
        let kind = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Kind::Url
        } else if s.contains("://") {
            return Err(ParseWarmUrlError(format!(
                "{EXPECTED}, got `{}`",
                hide(s, url_secrets(s))
            )));
        } else if s.contains('=') {
            key_values(s).map_err(|why| {
                ParseWarmUrlError(format!("not a key=value connection string: {why}"))
            })?;
            Kind::KeyValue
        } else if s.is_empty() {
            return Err(ParseWarmUrlError(format!(
                "{EXPECTED}, got an empty string"
            )));
        } else {
            // Neither a URL nor key=value: a misspelt word, not a place a password goes.
            return Err(ParseWarmUrlError(format!("{EXPECTED}, got `{s}`")));
        };
        let url = Self {
            raw: s.to_owned(),
            kind,
        };
        // The client's parser names options, never their values.
        s.parse::<tokio_postgres::Config>().map_err(|e| {
            ParseWarmUrlError(format!(
                "`{}` is not a valid PostgreSQL connection string: {e}",
                url.redacted()
            ))
        })?;
        Ok(url)
    }
}

impl fmt::Display for WarmUrl {
    /// The redacted form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for WarmUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WarmUrl({:?})", self.redacted())
    }
}

/// Whether a parameter of this name holds a secret (`password`, `sslpassword`, any case).
fn is_secret(name: &str) -> bool {
    name.to_ascii_lowercase().contains("password")
}

/// `s` with each of `spans` replaced by `***`.
fn hide(s: &str, mut spans: Vec<Range<usize>>) -> String {
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for r in spans {
        if r.end <= at {
            continue;
        }
        out.push_str(&s[at..r.start.max(at)]);
        out.push_str("***");
        at = r.end;
    }
    out.push_str(&s[at..]);
    out
}

/// The spans of a URL (`scheme://…`) that hold secrets. Errs on the side of hiding more:
/// a password with an unencoded `@`, `/` or `?` (which the client misreads, but which is
/// still a secret) is hidden whole, and `password` parameters are found wherever they are.
fn url_secrets(s: &str) -> Vec<Range<usize>> {
    let Some(start) = s.find("://").map(|i| i + 3) else {
        return Vec::new();
    };
    let rest = &s[start..];
    let mut spans = Vec::new();
    // The user part ends at the last `@` before the query, or (for a password holding `?`)
    // at the first `@` at all, which is where the client ends it.
    let query = rest.find('?').unwrap_or(rest.len());
    if let Some(at) = rest[..query].rfind('@').or_else(|| rest.find('@'))
        && let Some(colon) = rest[..at].find(':')
    {
        spans.push(start + colon + 1..start + at);
    }
    // `?password=…` and `&password=…`, keys percent-decoded as the client decodes them.
    for (i, c) in rest.char_indices() {
        if c != '?' && c != '&' {
            continue;
        }
        let param = &rest[i + 1..];
        let end = param.find('&').unwrap_or(param.len());
        let Some(eq) = param[..end].find('=') else {
            continue;
        };
        if is_secret(&percent_decode(&param[..eq])) {
            let value = start + i + 1 + eq + 1;
            spans.push(value..start + i + 1 + end);
        }
    }
    spans
}

/// `%XX` sequences decoded (invalid ones kept as they are), lossily as UTF-8.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits make one byte.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One `keyword = value` of a key=value string, as byte spans (the value with its quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    key: Range<usize>,
    value: Range<usize>,
}

/// Splits a libpq key=value string the way the client does (whitespace between parameters,
/// optional whitespace around `=`, values single-quoted or bare, `\` escaping the next
/// character), but insists on keywords of letters, digits and `_`, so that nothing else (a
/// URL without its scheme, say) is taken for one and echoed in an error. The error says what
/// is wrong without quoting the input.
fn key_values(s: &str) -> Result<Vec<Param>, &'static str> {
    let bytes = s.as_bytes();
    let mut params = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i == bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == key_start {
            return Err("expected a keyword (letters, digits and `_`) before each `=`");
        }
        let key = key_start..i;
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'=') {
            return Err("expected `=` after each keyword");
        }
        i = skip_ws(i + 1);
        let value_start = i;
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err("a quoted value is not terminated"),
                    Some(b'\\') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            i = i.min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = i.min(bytes.len());
            if i == value_start {
                return Err("a keyword has no value (quote an empty one: `key=''`)");
            }
        }
        params.push(Param {
            key,
            value: value_start..i,
        });
    }
    if params.is_empty() {
        return Err("no parameters");
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> WarmUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> String {
        s.parse::<WarmUrl>().expect_err(s).to_string()
    }

    #[test]
    fn embedded_in_both_spellings() {
        for s in ["embedded", "embedded:", "  embedded\n"] {
            let u = url(s);
            assert!(u.is_embedded() && !u.is_postgres(), "{s}");
            assert_eq!(u.to_string(), "embedded");
            assert_eq!(u.expose(), "embedded");
        }
        assert_eq!(WarmUrl::default(), WarmUrl::embedded());
        assert!(refused("embedded:/var/lib/strata").contains("takes no path"));
    }

    #[test]
    fn postgres_urls_and_key_value_strings() {
        for s in [
            "postgres://strata:pw@db:5432/strata",
            "postgresql://db/strata?sslmode=prefer",
            "host=db user=strata password=pw dbname=strata",
            "host = db  port=5432 password = 'a b\\'c' dbname=strata",
        ] {
            let u = url(s);
            assert!(u.is_postgres() && !u.is_embedded(), "{s}");
            assert_eq!(u.expose(), s);
            assert!(s.parse::<tokio_postgres::Config>().is_ok());
        }
    }

    #[test]
    fn urls_are_redacted() {
        for (s, want) in [
            ("postgres://db/strata", "postgres://db/strata"),
            ("postgres://strata@db/strata", "postgres://strata@db/strata"),
            (
                "postgres://strata:pw@db:5432/strata",
                "postgres://strata:***@db:5432/strata",
            ),
            (
                "postgresql://u:p%40ss@h1,h2/db",
                "postgresql://u:***@h1,h2/db",
            ),
            // An unencoded `@`, `/` or `?` in the password is still hidden whole.
            ("postgres://u:a@b/c@h/db", "postgres://u:***@h/db"),
            ("postgres://u:pa?ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=pw&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://u:pw@h/db?password=x&sslmode=prefer",
                "postgres://u:***@h/db?password=***&sslmode=prefer",
            ),
            // The client decodes parameter names, so `pass%77ord` is the password too.
            (
                "postgres://h/db?pass%77ord=pw",
                "postgres://h/db?pass%77ord=***",
            ),
            (
                "postgres://u:pw@[::1]:5432/db?application_name=a@b",
                "postgres://u:***@[::1]:5432/db?application_name=a@b",
            ),
        ] {
            let u = url(s);
            assert_eq!(u.redacted(), want, "{s}");
            assert_eq!(u.to_string(), want, "{s}");
            assert_eq!(format!("{u:?}"), format!("WarmUrl({want:?})"), "{s}");
        }
        // The client refuses `PASSWORD` as an unknown option, but messages hide it anyway.
        let s = "mysql://u:pw@h/db?PASSWORD=x&sslpassword=y";
        assert_eq!(
            hide(s, url_secrets(s)),
            "mysql://u:***@h/db?PASSWORD=***&sslpassword=***"
        );
    }

    #[test]
    fn key_value_strings_are_redacted() {
        for (s, want) in [
            (
                "host=db user=strata password=secret dbname=strata",
                "host=db user=strata password=*** dbname=strata",
            ),
            (
                "host=db password = 'it\\'s a secret' dbname=strata",
                "host=db password = *** dbname=strata",
            ),
            ("password=secret", "password=***"),
            ("host=db password=se\\ cret", "host=db password=***"),
            ("host=db dbname=strata", "host=db dbname=strata"),
        ] {
            let u = url(s);
            assert_eq!(u.redacted(), want, "{s}");
            assert!(!format!("{u} {u:?}").contains("secret"), "{s}");
        }
    }

    #[test]
    fn errors_never_repeat_a_password() {
        for s in [
            "mysql://u:secret@h/db",
            "host=db password='secret",
            "host=db password=secret nonsense",
            "u:secret@h/db?sslmode=require",
            "host=db password=secret port=notaport",
            "host=db password=secret colour=blue",
        ] {
            let err = refused(s);
            assert!(!err.contains("secret"), "{s}: {err}");
        }
        assert!(refused("mysql://u:secret@h/db").contains("mysql://u:***@h/db"));
        assert!(refused("host=db password='secret").contains("not terminated"));
        assert!(refused("host=db password=secret colour=blue").contains("colour"));
        assert!(refused("postgres://h:notaport/db").contains("postgres://h:notaport/db"));
        assert!(refused("embeded").contains("`embeded`"));
        assert!(refused("").contains("empty"));
    }
}
