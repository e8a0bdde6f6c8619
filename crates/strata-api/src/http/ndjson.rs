//! Reading a streamed NDJSON answer (`GET /v1/replay`, `GET /v1/archive/events`,
//! `POST /v1/archive/verify?progress=true`) from a byte stream, one line at a time.
//!
//! Invariants the reader keeps, whatever the server sends:
//!
//! * Memory is bounded: the buffer never holds more than `max_line_bytes` of one line plus
//!   one chunk; a longer line is [`NdjsonError::LineTooLong`], not an allocation.
//! * The server's in-stream failure, a last line `{"error": {...}}`, is never handed out as
//!   data: it becomes [`NdjsonError::Server`] and nothing after it is read.
//! * A body whose last line has no newline was cut short (the server ends every line with
//!   one), so by default that line is [`NdjsonError::Unterminated`] rather than a record a
//!   caller might write out half.

use std::{
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use serde::de::DeserializeOwned;

use super::{ErrorBody, ErrorLine};
use crate::error::BoxError;

/// The longest line [`NdjsonReader`] accepts unless told otherwise: far above any event the
/// server stores (its payload limit is configurable, but not beyond this), small enough that
/// a misbehaving server cannot exhaust a client's memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// Why an NDJSON answer could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum NdjsonError {
    /// The server broke the answer off and said why in its last line.
    #[error("the server stopped with an error: {0}")]
    Server(ErrorBody),
    /// The byte stream failed (connection reset, body cut short).
    #[error("the answer was cut short: {0}")]
    Transport(#[source] BoxError),
    /// A line is longer than the reader's limit.
    #[error("the server sent a line longer than {max_line_bytes} bytes")]
    LineTooLong {
        /// The limit.
        max_line_bytes: usize,
    },
    /// The answer ended in the middle of a line.
    #[error("the answer ended in the middle of a line")]
    Unterminated,
    /// A line is not JSON of the expected shape.
    #[error("line {line} of the answer is not the expected JSON: {source}")]
    Decode {
        /// The line's number in the answer, from 1 (blank lines counted).
        line: u64,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads NDJSON lines from a stream of byte chunks, such as a `reqwest` response's
/// `bytes_stream()` or one built with `futures::stream::unfold` over `Response::chunk`.
///
/// Lines may be split across chunks in any way; `\r\n` is accepted like `\n`; blank lines
/// are skipped. Each line is handed out without its line ending, either raw
/// ([`next_line`](Self::next_line), or the reader as a [`Stream`] of [`Bytes`]) for callers
/// that must keep the server's bytes, or decoded ([`next_record`](Self::next_record),
/// [`records`](Self::records)).
///
/// ```no_run
/// # async fn run(response: reqwest::Response) -> Result<(), strata_api::http::NdjsonError> {
/// use futures::stream;
/// use strata_api::http::{NdjsonReader, VerifyLine};
///
/// let chunks = stream::unfold(response, |mut r| async move {
///     r.chunk().await.transpose().map(|chunk| (chunk, r))
/// });
/// let mut lines = NdjsonReader::new(chunks);
/// while let Some(line) = lines.next_record::<VerifyLine>().await? {
///     match line {
///         VerifyLine::Progress(p) => println!("{}/{}", p.done, p.total),
///         VerifyLine::Report(r) => println!("ok: {}", r.ok),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct NdjsonReader<S> {
    /// Boxed so the reader is `Unpin` whatever the stream is.
    chunks: Pin<Box<S>>,
    buf: BytesMut,
    /// Leading bytes of `buf` already searched for a newline, so a long line arriving in
    /// many chunks is scanned once, not once per chunk.
    scanned: usize,
    max_line_bytes: usize,
    allow_unterminated: bool,
    /// Lines ended so far (blank ones included): the number of the last line handed out.
    line: u64,
    /// The byte stream has ended.
    drained: bool,
    /// Nothing more will be handed out (end, error line, or a failure).
    finished: bool,
}

impl<S> std::fmt::Debug for NdjsonReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonReader")
            .field("buffered", &self.buf.len())
            .field("max_line_bytes", &self.max_line_bytes)
            .field("allow_unterminated", &self.allow_unterminated)
            .field("line", &self.line)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<S, B, E> NdjsonReader<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<BoxError>,
{
    /// A reader of `chunks` with a line limit of [`DEFAULT_MAX_LINE_BYTES`] that refuses an
    /// unterminated last line.
    pub fn new(chunks: S) -> Self {
        Self {
            chunks: Box::pin(chunks),
            buf: BytesMut::new(),
            scanned: 0,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            allow_unterminated: false,
            line: 0,
            drained: false,
            finished: false,
        }
    }

    /// The same reader with lines limited to `max_line_bytes` (line ending excluded).
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// The same reader, handing out a last line without a newline as a line (`true`)
    /// instead of failing with [`NdjsonError::Unterminated`] (`false`, the default). Only
    /// for servers other than Strata's, which ends every line.
    pub fn allow_unterminated_last_line(mut self, allow: bool) -> Self {
        self.allow_unterminated = allow;
        self
    }

    /// The next non-blank line without its line ending; `None` once the answer is complete.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, NdjsonError> {
        std::future::poll_fn(|cx| self.poll_next_line(cx))
            .await
            .transpose()
    }

    /// The next line decoded as `T`; `None` once the answer is complete.
    pub async fn next_record<T: DeserializeOwned>(&mut self) -> Result<Option<T>, NdjsonError> {
        match self.next_line().await? {
            Some(line) => self.decode(&line).map(Some),
            None => Ok(None),
        }
    }

    /// The lines decoded as `T`, as a [`Stream`].
    pub fn records<T: DeserializeOwned>(self) -> NdjsonRecords<S, T> {
        NdjsonRecords {
            reader: self,
            _record: PhantomData,
        }
    }

    /// Polls for the next non-blank line: what the [`Stream`] implementation and
    /// [`next_line`](Self::next_line) do.
    pub fn poll_next_line(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, NdjsonError>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            if let Some(at) = memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + at;
                let mut line = self.buf.split_to(end + 1).freeze();
                self.scanned = 0;
                self.line += 1;
                line.truncate(end);
                if let Some(ready) = self.complete(line) {
                    return Poll::Ready(Some(ready));
                }
                continue;
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max_line_bytes {
                return Poll::Ready(Some(Err(self.too_long())));
            }
            if self.drained {
                self.finished = true;
                if is_blank(&self.buf) {
                    return Poll::Ready(None);
                }
                if !self.allow_unterminated {
                    return Poll::Ready(Some(Err(NdjsonError::Unterminated)));
                }
                let line = self.buf.split().freeze();
                self.line += 1;
                return Poll::Ready(self.complete(line));
            }
            match ready!(self.chunks.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => self.buf.extend_from_slice(chunk.as_ref()),
                Some(Err(e)) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(NdjsonError::Transport(e.into()))));
                }
                None => self.drained = true,
            }
        }
    }

    /// What to hand out for a line cut from the buffer (newline removed): nothing for a
    /// blank line, the server's error for an error line, the line otherwise.
    fn complete(&mut self, mut line: Bytes) -> Option<Result<Bytes, NdjsonError>> {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max_line_bytes {
            return Some(Err(self.too_long()));
        }
        if is_blank(&line) {
            return None;
        }
        if let Some(error) = error_line(&line) {
            self.finished = true;
            return Some(Err(NdjsonError::Server(error)));
        }
        Some(Ok(line))
    }

    fn too_long(&mut self) -> NdjsonError {
        self.finished = true;
        self.buf = BytesMut::new();
        NdjsonError::LineTooLong {
            max_line_bytes: self.max_line_bytes,
        }
    }

    fn decode<T: DeserializeOwned>(&self, line: &[u8]) -> Result<T, NdjsonError> {
        serde_json::from_slice(line).map_err(|source| NdjsonError::Decode {
            line: self.line,
            source,
        })
    }
}

/// The raw lines, as [`NdjsonReader::next_line`] hands them out.
impl<S, B, E> Stream for NdjsonReader<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, NdjsonError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_line(cx)
    }
}

/// The lines of an [`NdjsonReader`] decoded as `T` ([`NdjsonReader::records`]). A line that
/// does not decode yields [`NdjsonError::Decode`]; the stream goes on after it, so a caller
/// that wants to stop at the first bad line stops polling.
pub struct NdjsonRecords<S, T> {
    reader: NdjsonReader<S>,
    _record: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for NdjsonRecords<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonRecords")
            .field("reader", &self.reader)
            .finish()
    }
}

impl<S, T> NdjsonRecords<S, T> {
    /// The reader underneath, to go on reading raw lines.
    pub fn into_inner(self) -> NdjsonReader<S> {
        self.reader
    }
}

impl<S, B, E, T> Stream for NdjsonRecords<S, T>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<BoxError>,
    T: DeserializeOwned,
{
    type Item = Result<T, NdjsonError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let reader = &mut self.get_mut().reader;
        let line = ready!(reader.poll_next_line(cx));
        Poll::Ready(line.map(|line| line.and_then(|line| reader.decode(&line))))
    }
}

/// The server's error, if `line` is an error line. Only a line whose first member is
/// `"error"` is parsed (event lines start with `"tenant"`), so checking every line of a
/// large answer costs a few byte comparisons.
fn error_line(line: &[u8]) -> Option<ErrorBody> {
    let rest = line.trim_ascii_start().strip_prefix(b"{")?;
    if !rest.trim_ascii_start().starts_with(b"\"error\"") {
        return None;
    }
    serde_json::from_slice::<ErrorLine>(line)
        .ok()
        .map(|l| l.error)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use std::io;

    use futures::{StreamExt, stream};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Rec {
        a: u32,
    }

    type Chunks = stream::Iter<std::vec::IntoIter<Result<Vec<u8>, io::Error>>>;

    fn reader(chunks: &[&[u8]]) -> NdjsonReader<Chunks> {
        NdjsonReader::new(stream::iter(
            chunks.iter().map(|c| Ok(c.to_vec())).collect::<Vec<_>>(),
        ))
    }

    async fn records(mut r: NdjsonReader<Chunks>) -> (Vec<u32>, Option<NdjsonError>) {
        let mut got = Vec::new();
        loop {
            match r.next_record::<Rec>().await {
                Ok(Some(rec)) => got.push(rec.a),
                Ok(None) => return (got, None),
                Err(e) => return (got, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn lines_split_across_chunks_are_joined() {
        let (got, err) = records(reader(&[
            b"{\"a\":",
            b"1}\n{\"a\"",
            b":2}",
            b"\n",
            b"{\"a\":3}\n",
        ]))
        .await;
        assert_eq!(got, [1, 2, 3]);
        assert!(err.is_none(), "{err:?}");

        // One byte per chunk: the worst split there is.
        let body = b"{\"a\":1}\n\n{\"a\":22}\n";
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let (got, err) = records(reader(&bytes)).await;
        assert_eq!(got, [1, 22]);
        assert!(err.is_none(), "{err:?}");
    }

    #[tokio::test]
    async fn crlf_and_blank_lines() {
        let (got, err) = records(reader(&[b"{\"a\":1}\r\n\r\n  \n{\"a\":2}\r", b"\n \r\n"])).await;
        assert_eq!(got, [1, 2]);
        assert!(err.is_none(), "{err:?}");
        let mut r = reader(&[b"x\r\n"]);
        assert_eq!(r.next_line().await.unwrap().unwrap(), "x");
    }

    #[tokio::test]
    async fn a_last_line_without_newline_is_refused_unless_allowed() {
        let (got, err) = records(reader(&[b"{\"a\":1}\n{\"a\":2}"])).await;
        assert_eq!(got, [1]);
        assert!(matches!(err, Some(NdjsonError::Unterminated)), "{err:?}");

        let (got, err) =
            records(reader(&[b"{\"a\":1}\n{\"a\":", b"2}\r"]).allow_unterminated_last_line(true))
                .await;
        assert_eq!(got, [1, 2]);
        assert!(err.is_none(), "{err:?}");

        // Trailing whitespace is not a line.
        let (got, err) = records(reader(&[b"{\"a\":1}\n  "])).await;
        assert_eq!(got, [1]);
        assert!(err.is_none(), "{err:?}");
        let (got, err) = records(reader(&[])).await;
        assert!(got.is_empty() && err.is_none());
    }

    #[tokio::test]
    async fn the_error_line_ends_the_answer_with_the_servers_error() {
        let mut r = reader(&[
            b"{\"a\":1}\n{\"err",
            b"or\":{\"code\":\"warm_unavailable\",\"message\":\"the warm tier is unavailable; retry later\"}}\n",
            b"{\"a\":2}\n",
        ]);
        assert_eq!(r.next_record::<Rec>().await.unwrap(), Some(Rec { a: 1 }));
        let Err(NdjsonError::Server(body)) = r.next_record::<Rec>().await else {
            panic!("expected the server's error")
        };
        assert_eq!(body.code, "warm_unavailable");
        assert_eq!(body.kind(), Some(crate::ErrorKind::WarmUnavailable));
        assert!(
            r.next_line().await.unwrap().is_none(),
            "nothing after the error line"
        );

        // Lines that only look like one are data, handed out as they came.
        for line in [
            &br#"{"tenant":"a","payload":{"error":{"code":"x","message":"y"}}}"#[..],
            br#"{"error":{"code":"x","message":"y"},"tenant":"a"}"#,
            br#"{"error":"not an object"}"#,
        ] {
            let mut r = reader(&[line, b"\n"]);
            assert_eq!(r.next_line().await.unwrap().unwrap(), line);
        }
    }

    #[tokio::test]
    async fn an_over_long_line_fails_without_buffering_it() {
        // Never terminated: the reader gives up once the limit is passed, not at the end.
        let endless = stream::repeat_with(|| Ok::<_, io::Error>(vec![b'x'; 8]));
        let mut r = NdjsonReader::new(endless).with_max_line_bytes(16);
        assert!(matches!(
            r.next_line().await,
            Err(NdjsonError::LineTooLong { max_line_bytes: 16 })
        ));
        assert!(r.buf.is_empty());
        assert!(r.next_line().await.unwrap().is_none());

        // A whole line in one chunk is held to the same limit; the line ending is not
        // counted.
        let mut r = reader(&[b"0123456789abcdef\r\n0123456789abcdefg\n"]).with_max_line_bytes(16);
        assert_eq!(r.next_line().await.unwrap().unwrap().len(), 16);
        assert!(matches!(
            r.next_line().await,
            Err(NdjsonError::LineTooLong { .. })
        ));
    }

    #[tokio::test]
    async fn transport_and_decode_failures_are_reported() {
        let chunks = stream::iter(vec![
            Ok(b"{\"a\":1}\n{\"a\"".to_vec()),
            Err(io::Error::other("connection reset")),
        ]);
        let mut r = NdjsonReader::new(chunks).records::<Rec>();
        assert_eq!(r.next().await.unwrap().unwrap(), Rec { a: 1 });
        let err = r.next().await.unwrap().unwrap_err();
        assert!(matches!(err, NdjsonError::Transport(_)), "{err:?}");
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert!(r.next().await.is_none());

        let mut r = reader(&[b"{\"a\":1}\n\n{\"b\":2}\n{\"a\":3}\n"]).records::<Rec>();
        assert_eq!(r.next().await.unwrap().unwrap(), Rec { a: 1 });
        let err = r.next().await.unwrap().unwrap_err();
        assert!(
            matches!(err, NdjsonError::Decode { line: 3, .. }),
            "{err:?}"
        );
        assert_eq!(r.next().await.unwrap().unwrap(), Rec { a: 3 });
    }

    #[tokio::test]
    async fn raw_lines_keep_the_servers_bytes() {
        let r = reader(&[b"{\"b\": 1,  \"a\":2}\n", b"{\"a\":3}\n"]);
        let lines: Vec<Bytes> = r.map(Result::unwrap).collect().await;
        assert_eq!(lines, [&b"{\"b\": 1,  \"a\":2}"[..], b"{\"a\":3}"]);
    }
}
