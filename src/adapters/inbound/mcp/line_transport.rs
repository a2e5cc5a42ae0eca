//! Newline-delimited JSON-RPC over a byte stream (the server's stdin and stdout) that answers
//! what it cannot decode instead of dropping it, so a client waiting on a request always hears
//! back and the session goes on.
//!
//! - A line that is not JSON gets `-32700 Parse error`; JSON that is not a JSON-RPC message
//!   (a batch among them) gets `-32600 Invalid Request`. Both echo the request's id when one
//!   can be read (a string or a number) and use `null` otherwise, as JSON-RPC 2.0 §5 asks. A
//!   JSON number too large for the parser (`1e400`) is a parse error, but its id is still
//!   readable and echoed.
//! - A line longer than [`MAX_LINE_BYTES`] is refused with `-32600` without being held: once
//!   over the limit its bytes only pass through a [`MemberScanner`], which keeps the `id`.
//! - A malformed notification (a `method` and no `id`) and a malformed response (`result` or
//!   `error` and no `method`) get no answer: JSON-RPC never answers either, and answering a
//!   peer's broken error could start an error storm.
//! - Every refused line (answered or not; blank lines are no frames) is reported to the
//!   [`RefusalRecorder`], when there is one, as its size and a reason, never its content. The
//!   recorder's task records it and only then queues its answer, so a client that has its
//!   answer knows the refusal is on record; answers to refused lines can therefore overtake
//!   answers to earlier requests, which JSON-RPC allows.
//! - Ids are echoed exactly as they came. rmcp keeps a numeric id as an `i64`, so a request
//!   whose numeric id is not written as one (`123456789012345678901234567890`, `1.5`, `1e2`,
//!   `-0`) reaches rmcp under a surrogate string id, and the answer goes out with the
//!   client's own bytes. A string id that could be mistaken for a surrogate is swapped too. A
//!   `notifications/cancelled` naming such a request is rewritten to the surrogate.
//!
//! Every frame, answers from the service and refusals from the reader alike, is one complete
//! line handed to a single writer task over a bounded queue, so frames never interleave and
//! stdout only ever carries whole JSON lines. The writer sends what is queued in one write and
//! flushes whenever the queue runs dry. Its owner keeps a [`FrameWriter`] and waits on it after
//! the session, because rmcp drops a transport without closing it when the session ends
//! before the handshake, and frames queued by then must still go out.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ErrorCode, JsonRpcMessage, NumberOrString};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::frame_refusals::{FrameRefusal, FrameRefusalReason};

/// The longest line accepted, without its newline. Longer lines are refused unread.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Frames waiting for the writer before `send` waits: backpressure on a client that stops
/// reading stdout.
const WRITE_QUEUE_FRAMES: usize = 1024;
/// Refused lines waiting for the recorder before the reader waits: backpressure on a client
/// that floods the server with lines it must record.
const REFUSAL_QUEUE_FRAMES: usize = 64;
/// The most frames written between two flushes while the queue stays busy.
const MAX_BATCH_FRAMES: usize = 64;
/// Read and write buffer sizes.
const IO_BUFFER_BYTES: usize = 64 * 1024;
/// A line buffer grown past this by one large message is released after it.
const KEPT_LINE_CAPACITY: usize = 256 * 1024;
/// The longest `id` echoed or kept to echo; a longer one is answered as `null`.
const MAX_ECHOED_ID_BYTES: usize = 1024;
/// The most requests in flight under a surrogate id at once; beyond it such a request is
/// refused, so a client cannot make the table grow without bound.
const MAX_SURROGATE_IDS: usize = 1024;
/// What every surrogate id starts with.
const SURROGATE_PREFIX: &str = "ibkr-agent-gateway/id/";
/// The longest member name the scanner compares; the names it looks for are shorter.
const MAX_SCANNED_KEY_BYTES: usize = 8;
/// The longest parser message passed on in an Invalid Request answer.
const MAX_REASON_CHARS: usize = 200;

/// Where the transport reports the lines it refuses.
#[async_trait::async_trait]
pub(super) trait RefusalRecorder: Send + Sync + 'static {
    /// Records one refused line. A failure is the recorder's to report: the line is answered
    /// either way.
    async fn record(&self, refusal: FrameRefusal);
}

/// A [`Transport`] for the server role over newline-delimited JSON.
pub(super) struct LineTransport<R> {
    reader: BufReader<R>,
    /// The line read so far. It survives a cancelled `receive` (rmcp polls `receive` inside
    /// a `select!`), so a partly read line is resumed, not lost.
    line: Vec<u8>,
    max_line_bytes: usize,
    /// Set while the rest of an over-long line is skipped; also survives cancellation.
    skipping: Option<MemberScanner>,
    /// A refused line waiting for room in its queue. Held here rather than across an await
    /// so a cancelled `receive` does not lose it.
    pending_refusal: Option<Refused>,
    /// The write queue; `None` once closed.
    frames: Option<mpsc::Sender<Vec<u8>>>,
    /// The recorder's queue, when there is a recorder; `None` once closed. Without one,
    /// refusals are answered straight through `frames`.
    refusals: Option<mpsc::Sender<Refused>>,
    /// The ids rmcp sees as surrogates.
    ids: SurrogateIds,
}

/// A line the transport refused: what is recorded, and its answer if it gets one.
#[derive(Debug, PartialEq, Eq)]
struct Refused {
    record: FrameRefusal,
    answer: Option<Vec<u8>>,
}

impl Refused {
    fn new(size_bytes: usize, reason: FrameRefusalReason, answer: Option<Vec<u8>>) -> Self {
        Self {
            record: FrameRefusal {
                size_bytes: u64::try_from(size_bytes).unwrap_or(u64::MAX),
                reason,
            },
            answer,
        }
    }
}

/// The tasks writing a [`LineTransport`]'s frames (and recording its refusals). They end once
/// the transport is closed or dropped and everything queued before is done.
#[must_use = "wait on it with `finish` so queued frames are written before the process exits"]
pub(super) struct FrameWriter {
    recorder: Option<JoinHandle<()>>,
    writer: JoinHandle<()>,
}

impl FrameWriter {
    /// Waits, at most `limit`, for every queued refusal to be recorded and every queued frame
    /// to be written; the transport must be closed or dropped first. Tasks still blocked after
    /// `limit` (a client that stopped reading) are stopped.
    pub(super) async fn finish(self, limit: Duration) {
        let aborts: Vec<_> = self
            .recorder
            .iter()
            .chain([&self.writer])
            .map(JoinHandle::abort_handle)
            .collect();
        let tasks = async {
            // The recorder goes first: it holds a sender of the write queue until it ends.
            for task in self.recorder.into_iter().chain([self.writer]) {
                if let Err(error) = task.await {
                    tracing::error!(%error, "an MCP output task failed");
                }
            }
        };
        if tokio::time::timeout(limit, tasks).await.is_err() {
            for abort in aborts {
                abort.abort();
            }
            tracing::warn!("queued MCP frames were not written in time and are dropped");
        }
    }
}

/// A transport reading `reader`, and the tasks, spawned on the current runtime, that write its
/// frames to `writer` and hand its refused lines to `recorder`.
pub(super) fn line_transport<R, W>(
    reader: R,
    writer: W,
    recorder: Option<Arc<dyn RefusalRecorder>>,
) -> (LineTransport<R>, FrameWriter)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (frames, queued) = mpsc::channel(WRITE_QUEUE_FRAMES);
    let (refusals, recorder) = match recorder {
        Some(recorder) => {
            let (refusals, refused) = mpsc::channel(REFUSAL_QUEUE_FRAMES);
            let task = tokio::spawn(record_refusals(recorder, refused, frames.clone()));
            (Some(refusals), Some(task))
        }
        None => (None, None),
    };
    let transport = LineTransport {
        reader: BufReader::with_capacity(IO_BUFFER_BYTES, reader),
        line: Vec::new(),
        max_line_bytes: MAX_LINE_BYTES,
        skipping: None,
        pending_refusal: None,
        frames: Some(frames),
        refusals,
        ids: SurrogateIds::default(),
    };
    let writer = tokio::spawn(write_frames(writer, queued));
    (transport, FrameWriter { recorder, writer })
}

impl<R> LineTransport<R>
where
    R: AsyncRead + Unpin + Send,
{
    #[cfg(test)]
    fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// Queues the pending refusal for the recorder, or its answer for the writer when there
    /// is no recorder, waiting for room. Cancel-safe: the refusal stays pending until a permit
    /// is in hand, and sending on a permit does not wait.
    async fn flush_refusal(&mut self) {
        if let Some(refusals) = self.refusals.as_ref() {
            let permit = refusals.reserve().await;
            match (permit, self.pending_refusal.take()) {
                (Ok(permit), Some(refused)) => permit.send(refused),
                (Err(_closed), Some(_)) => {
                    tracing::error!(
                        "the refusal recorder has stopped; a refused line is unrecorded"
                    );
                }
                (_, None) => {}
            }
            return;
        }
        let has_answer = self
            .pending_refusal
            .as_ref()
            .is_some_and(|refused| refused.answer.is_some());
        let Some(frames) = self.frames.as_ref().filter(|_| has_answer) else {
            self.pending_refusal = None;
            return;
        };
        let permit = frames.reserve().await;
        let answer = self
            .pending_refusal
            .take()
            .and_then(|refused| refused.answer);
        match (permit, answer) {
            (Ok(permit), Some(answer)) => permit.send(answer),
            (Err(_closed), Some(_)) => {
                tracing::debug!("stdout is closed; a refusal was not sent");
            }
            (_, None) => {}
        }
    }

    /// Reads up to the next newline (or the end of input) without holding more than
    /// `max_line_bytes` of it. Cancel-safe: bytes are moved out of the reader's buffer and
    /// into `line` (or the scanner) with no await in between.
    async fn read_line(&mut self) -> LineRead {
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(available) => available,
                Err(error) => return LineRead::Failed(error),
            };
            if available.is_empty() {
                // End of input: an unterminated last line still counts as a line.
                return match self.skipping.take() {
                    Some(scanner) => LineRead::Oversize(scanner),
                    None if self.line.is_empty() => LineRead::End,
                    None => LineRead::Line,
                };
            }
            let newline = available.iter().position(|byte| *byte == b'\n');
            let content = &available[..newline.unwrap_or(available.len())];
            if let Some(scanner) = self.skipping.as_mut() {
                scanner.feed(content);
            } else if self.line.len().saturating_add(content.len()) > self.max_line_bytes {
                let mut scanner = MemberScanner::default();
                scanner.feed(&self.line);
                scanner.feed(content);
                self.line = Vec::new();
                self.skipping = Some(scanner);
            } else {
                self.line.extend_from_slice(content);
            }
            let consumed = newline.map_or(available.len(), |index| index + 1);
            self.reader.consume(consumed);
            if newline.is_some() {
                return match self.skipping.take() {
                    Some(scanner) => LineRead::Oversize(scanner),
                    None => LineRead::Line,
                };
            }
        }
    }

    /// Decodes the line read and empties the buffer for the next one.
    fn take_line(&mut self) -> Decoded {
        let decoded = decode(&self.line, &mut self.ids);
        if self.line.capacity() > KEPT_LINE_CAPACITY {
            self.line = Vec::new();
        } else {
            self.line.clear();
        }
        decoded
    }
}

/// What one bounded line read found.
enum LineRead {
    /// A line is in `LineTransport::line`, without its newline.
    Line,
    /// The line was over the limit and has been skipped.
    Oversize(MemberScanner),
    /// The end of input.
    End,
    Failed(io::Error),
}

impl<R> Transport<RoleServer> for LineTransport<R>
where
    R: AsyncRead + Unpin + Send,
{
    type Error = io::Error;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed("line-delimited JSON-RPC")
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // Encoded here, so the queue only ever holds complete lines.
        let frame = encode_answer(&item, &mut self.ids);
        let frames = self.frames.clone();
        async move {
            let frame = frame?;
            let frames = frames.ok_or_else(closed)?;
            frames.send(frame).await.map_err(|_| closed())
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if self.pending_refusal.is_some() {
                self.flush_refusal().await;
            }
            match self.read_line().await {
                LineRead::Line => match self.take_line() {
                    Decoded::Message(message) => return Some(*message),
                    Decoded::Refused(refused) => self.pending_refusal = Some(refused),
                    Decoded::Blank => {}
                },
                LineRead::Oversize(scanner) => {
                    tracing::debug!(
                        max_line_bytes = self.max_line_bytes,
                        "refusing an over-long line"
                    );
                    self.pending_refusal = Some(scanner.refusal(self.max_line_bytes));
                }
                LineRead::End => return None,
                LineRead::Failed(error) => {
                    tracing::error!(%error, "reading the MCP input failed");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // The recorder ends once its queue is drained, and the writer once every sender (the
        // recorder's too) is gone and its queue is drained; the owner of the `FrameWriter`
        // waits for both.
        drop(self.frames.take());
        drop(self.refusals.take());
        Ok(())
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the MCP output is closed")
}

fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, io::Error> {
    // Compact serde_json output escapes control characters, so the frame has no newline but
    // the one that ends it.
    let mut frame = serde_json::to_vec(message).map_err(io::Error::other)?;
    frame.push(b'\n');
    Ok(frame)
}

/// Encodes an outgoing message, giving an answer to a request that reached rmcp under a
/// surrogate the id the client wrote.
fn encode_answer(
    message: &TxJsonRpcMessage<RoleServer>,
    ids: &mut SurrogateIds,
) -> Result<Vec<u8>, io::Error> {
    let answered = match message {
        JsonRpcMessage::Response(response) => Some(&response.id),
        JsonRpcMessage::Error(error) => error.id.as_ref(),
        JsonRpcMessage::Request(_) | JsonRpcMessage::Notification(_) => None,
    };
    let Some(original) = answered.and_then(|id| ids.take(id)) else {
        return encode(message);
    };
    #[derive(Serialize)]
    struct WithId<'a> {
        id: &'a RawValue,
        #[serde(flatten)]
        rest: &'a Map<String, Value>,
    }
    let mut rest = match serde_json::to_value(message).map_err(io::Error::other)? {
        Value::Object(members) => members,
        _ => return Err(io::Error::other("an answer is not a JSON object")),
    };
    rest.remove("id");
    encode(&WithId {
        id: &original,
        rest: &rest,
    })
}

/// Records queued refusals, then queues their answers, until the transport is gone.
async fn record_refusals(
    recorder: Arc<dyn RefusalRecorder>,
    mut refused: mpsc::Receiver<Refused>,
    frames: mpsc::Sender<Vec<u8>>,
) {
    while let Some(Refused { record, answer }) = refused.recv().await {
        recorder.record(record).await;
        if let Some(answer) = answer
            && frames.send(answer).await.is_err()
        {
            tracing::debug!("stdout is closed; a refusal was not sent");
        }
    }
}

/// Writes queued frames until every sender is gone or the output fails.
async fn write_frames<W: AsyncWrite + Unpin>(writer: W, mut queued: mpsc::Receiver<Vec<u8>>) {
    let mut writer = BufWriter::with_capacity(IO_BUFFER_BYTES, writer);
    while let Some(frame) = queued.recv().await {
        let mut written = writer.write_all(&frame).await;
        // Frames already queued join this write; flushing once the queue is empty keeps an
        // interactive client's answer from waiting in the buffer.
        let mut batched = 1;
        while written.is_ok()
            && batched < MAX_BATCH_FRAMES
            && let Ok(frame) = queued.try_recv()
        {
            written = writer.write_all(&frame).await;
            batched += 1;
        }
        if let Err(error) = written.and(writer.flush().await) {
            // Nobody reads the answers any more; sends now fail with NotConnected.
            tracing::debug!(%error, "writing MCP output failed");
            return;
        }
    }
    if let Err(error) = writer.shutdown().await {
        tracing::debug!(%error, "closing MCP output failed");
    }
}

/// What one complete line turned out to be.
#[derive(Debug)]
enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Not a message.
    Refused(Refused),
    /// Only whitespace: no frame at all.
    Blank,
}

/// The UTF-8 byte order mark, which RFC 8259 §8.1 lets a parser ignore.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn decode(line: &[u8], ids: &mut SurrogateIds) -> Decoded {
    let size_bytes = line.len();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
    if line.trim_ascii().is_empty() {
        return Decoded::Blank;
    }
    let rewrite = match rewrite_ids(line, ids) {
        Ok(rewrite) => rewrite,
        Err(answer) => {
            tracing::debug!("refusing a request whose id cannot be kept");
            return Decoded::Refused(Refused::new(
                size_bytes,
                FrameRefusalReason::UnsupportedId,
                answer,
            ));
        }
    };
    let text = match &rewrite {
        Rewrite::Unchanged => line,
        Rewrite::Request { text, .. } | Rewrite::Cancellation { text, .. } => text.as_slice(),
    };
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(text) {
        Ok(message) => {
            if let Rewrite::Cancellation { surrogate, .. } = &rewrite {
                // rmcp sends no answer to a cancelled request.
                ids.forget(surrogate);
            }
            Decoded::Message(Box::new(message))
        }
        Err(error) => {
            if let Rewrite::Request { surrogate, .. } = &rewrite {
                ids.forget(surrogate);
            }
            Decoded::Refused(refuse(line, &error, size_bytes))
        }
    }
}

/// A line with an id swapped for rmcp's sake.
enum Rewrite {
    Unchanged,
    /// A request now under `surrogate`.
    Request {
        text: Vec<u8>,
        surrogate: Arc<str>,
    },
    /// A cancellation now naming `surrogate`.
    Cancellation {
        text: Vec<u8>,
        surrogate: Arc<str>,
    },
}

/// Swaps a request id rmcp would not echo exactly for a surrogate, or the id a cancellation
/// names for the surrogate it reached rmcp under.
///
/// # Errors
/// The answer refusing a request whose id cannot be kept (too long, or too many in flight).
fn rewrite_ids(line: &[u8], ids: &mut SurrogateIds) -> Result<Rewrite, Option<Vec<u8>>> {
    if line.trim_ascii_start().first() != Some(&b'{') {
        return Ok(Rewrite::Unchanged);
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(line) else {
        return Ok(Rewrite::Unchanged);
    };
    match (envelope.id, envelope.method) {
        (Some(id), Some(_)) if needs_surrogate(id) => {
            if id.get().len() > MAX_ECHOED_ID_BYTES {
                let reason = format!("the id is longer than {MAX_ECHOED_ID_BYTES} bytes");
                return Err(refusal(Refusal::invalid_request(reason), None));
            }
            let Some(surrogate) = ids.issue(id) else {
                let reason = format!(
                    "more than {MAX_SURROGATE_IDS} requests with ids written other than as \
                     64-bit integers are in flight"
                );
                return Err(refusal(Refusal::invalid_request(reason), Some(id)));
            };
            match splice_string(line, id, &surrogate) {
                Some(text) => Ok(Rewrite::Request { text, surrogate }),
                None => {
                    ids.forget(&surrogate);
                    Ok(Rewrite::Unchanged)
                }
            }
        }
        (None, Some(method)) if method.get() == r#""notifications/cancelled""# => {
            let Ok(cancellation) = serde_json::from_slice::<Cancellation<'_>>(line) else {
                return Ok(Rewrite::Unchanged);
            };
            let named = cancellation.params.and_then(|params| params.request_id);
            let Some((named, surrogate)) = named.and_then(|id| Some((id, ids.find(id)?))) else {
                return Ok(Rewrite::Unchanged);
            };
            Ok(
                splice_string(line, named, &surrogate).map_or(Rewrite::Unchanged, |text| {
                    Rewrite::Cancellation { text, surrogate }
                }),
            )
        }
        _ => Ok(Rewrite::Unchanged),
    }
}

/// True for an id rmcp would not echo byte for byte, or would take for a surrogate.
fn needs_surrogate(id: &RawValue) -> bool {
    let text = id.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<Cow<'_, str>>(text)
            .is_ok_and(|id| id.starts_with(SURROGATE_PREFIX)),
        Some(b'-' | b'0'..=b'9') => text
            .parse::<i64>()
            .map_or(true, |number| number.to_string() != text),
        _ => false,
    }
}

/// `line` with the value `inner` (borrowed from `line`) replaced by the JSON string
/// `replacement`; `None` when `inner` is not part of `line`.
fn splice_string(line: &[u8], inner: &RawValue, replacement: &str) -> Option<Vec<u8>> {
    let inner = inner.get();
    let start = inner.as_ptr().addr().checked_sub(line.as_ptr().addr())?;
    let end = start.checked_add(inner.len())?;
    if line.get(start..end)? != inner.as_bytes() {
        return None;
    }
    let replacement = serde_json::to_vec(replacement).ok()?;
    let mut text = Vec::with_capacity(line.len() - inner.len() + replacement.len());
    text.extend_from_slice(&line[..start]);
    text.extend_from_slice(&replacement);
    text.extend_from_slice(&line[end..]);
    Some(text)
}

/// The requests in flight under a surrogate id, with the ids their clients wrote.
#[derive(Debug, Default)]
struct SurrogateIds {
    live: HashMap<Arc<str>, Box<RawValue>>,
    issued: u64,
}

impl SurrogateIds {
    /// A new surrogate for `original`, or `None` when too many are in flight.
    fn issue(&mut self, original: &RawValue) -> Option<Arc<str>> {
        if self.live.len() >= MAX_SURROGATE_IDS {
            return None;
        }
        self.issued += 1;
        let surrogate: Arc<str> = format!("{SURROGATE_PREFIX}{}", self.issued).into();
        self.live
            .insert(Arc::clone(&surrogate), original.to_owned());
        Some(surrogate)
    }

    /// The surrogate of the request in flight whose client id is `original`, written the
    /// same way.
    fn find(&self, original: &RawValue) -> Option<Arc<str>> {
        self.live
            .iter()
            .find(|(_, id)| id.get() == original.get())
            .map(|(surrogate, _)| Arc::clone(surrogate))
    }

    /// The client's id for an answer rmcp sends under `id`, which ends the surrogate.
    fn take(&mut self, id: &NumberOrString) -> Option<Box<RawValue>> {
        match id {
            NumberOrString::String(id) => self.live.remove(&**id),
            NumberOrString::Number(_) => None,
        }
    }

    fn forget(&mut self, surrogate: &str) {
        self.live.remove(surrogate);
    }
}

/// The refusal of a line rmcp could not decode, with its answer (`None` when it must get
/// none).
fn refuse(line: &[u8], error: &serde_json::Error, size_bytes: usize) -> Refused {
    // The parser's message is not logged: it can quote the line.
    let category = error.classify();
    let is_object = line.trim_ascii_start().first() == Some(&b'{');
    let envelope = is_object
        .then(|| serde_json::from_slice::<Envelope<'_>>(line).ok())
        .flatten();
    let Some(envelope) = envelope else {
        // No readable envelope: either not JSON at all, or JSON of the wrong shape.
        tracing::debug!(?category, "refusing a line that is no JSON-RPC message");
        if serde_json::from_slice::<IgnoredAny>(line).is_err() {
            let answer = refusal(Refusal::parse_error(), None);
            return Refused::new(size_bytes, FrameRefusalReason::ParseError, answer);
        }
        let reason = if line.trim_ascii_start().first() == Some(&b'[') {
            FrameRefusalReason::Batch
        } else {
            FrameRefusalReason::InvalidMessage
        };
        let answer = refusal(Refusal::invalid_request(error.to_string()), None);
        return Refused::new(size_bytes, reason, answer);
    };
    let shape = envelope.shape();
    tracing::debug!(?category, ?shape, "refusing a malformed JSON-RPC message");
    let (reason, answer) = match category {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            (FrameRefusalReason::ParseError, Refusal::parse_error())
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => (
            FrameRefusalReason::InvalidMessage,
            Refusal::invalid_request(error.to_string()),
        ),
    };
    let answer = shape
        .is_answered()
        .then(|| refusal(answer, envelope.id.and_then(echoable_id)))
        .flatten();
    Refused::new(size_bytes, reason, answer)
}

/// The id to echo, exactly as written: a string or a number, as JSON-RPC allows, and not
/// over-long; anything else is answered as `null`.
fn echoable_id(raw: &RawValue) -> Option<&RawValue> {
    let echoable = matches!(
        raw.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9')
    );
    (echoable && raw.get().len() <= MAX_ECHOED_ID_BYTES).then_some(raw)
}

/// The members of a message that say what it is, read without materialising anything else
/// (ignored values are only scanned, so a number too large to parse does not fail this).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "present")]
    result: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    error: Option<IgnoredAny>,
}

/// The request a `notifications/cancelled` names.
#[derive(Deserialize)]
struct Cancellation<'a> {
    #[serde(default, borrow)]
    params: Option<CancellationParams<'a>>,
}

#[derive(Deserialize)]
struct CancellationParams<'a> {
    #[serde(default, borrow, rename = "requestId")]
    request_id: Option<&'a RawValue>,
}

/// `Some` for a member that is there, even when it is `null`: `"id": null` is still a
/// request (an invalid one), not a notification.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl Envelope<'_> {
    fn shape(&self) -> Shape {
        Shape::of(
            self.id.is_some(),
            self.method.is_some(),
            self.result.is_some() || self.error.is_some(),
        )
    }
}

/// What a malformed message meant to be, from the members it has.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// `method` and `id`, or neither `method` nor `result`/`error`.
    Request,
    /// `method` without `id`.
    Notification,
    /// `result` or `error` without `method`.
    Response,
}

impl Shape {
    fn of(has_id: bool, has_method: bool, has_outcome: bool) -> Self {
        match (has_id, has_method, has_outcome) {
            (false, true, _) => Self::Notification,
            (_, false, true) => Self::Response,
            _ => Self::Request,
        }
    }

    fn is_answered(&self) -> bool {
        *self == Self::Request
    }
}

/// The error member of a refusal.
#[derive(Serialize)]
struct Refusal {
    code: i32,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl Refusal {
    fn parse_error() -> Self {
        Self {
            code: ErrorCode::PARSE_ERROR.0,
            message: "Parse error",
            data: None,
        }
    }

    /// `reason` is the parser's message, bounded: it can quote the client's own input.
    fn invalid_request(reason: String) -> Self {
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        Self {
            code: ErrorCode::INVALID_REQUEST.0,
            message: "Invalid Request",
            data: Some(serde_json::json!({ "reason": reason })),
        }
    }
}

/// One refusal line: `{"jsonrpc":"2.0","id":…,"error":{…}}`, with `id` always present
/// (`null` for `None`).
fn refusal(error: Refusal, id: Option<&RawValue>) -> Option<Vec<u8>> {
    #[derive(Serialize)]
    struct Frame<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RawValue>,
        error: Refusal,
    }
    let frame = Frame {
        jsonrpc: "2.0",
        id,
        error,
    };
    encode(&frame)
        .inspect_err(|error| tracing::error!(%error, "a refusal could not be encoded"))
        .ok()
}

/// Follows the top-level members of a JSON object fed in chunks, keeping only what answering
/// it needs: which of `id`, `method`, `result`, `error` it has, and the raw `id` (bounded).
/// Nested values and strings are tracked only far enough to tell where members start.
#[derive(Default)]
struct MemberScanner {
    /// A non-whitespace byte has been seen.
    started: bool,
    /// That byte opened an object; nothing else is scanned.
    object: bool,
    /// The object has been closed: the line is at least shaped like a whole object.
    closed: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The current string is a member name of the top-level object.
    in_key: bool,
    /// Between a top-level `{` or `,` and the next `:`.
    expecting_key: bool,
    key: Vec<u8>,
    key_too_long: bool,
    /// Inside the value of the top-level `id`.
    in_id: bool,
    id: Vec<u8>,
    id_too_long: bool,
    has_id: bool,
    has_method: bool,
    has_outcome: bool,
    /// Every byte fed, to record the line's size.
    size_bytes: usize,
}

impl MemberScanner {
    fn feed(&mut self, bytes: &[u8]) {
        self.size_bytes = self.size_bytes.saturating_add(bytes.len());
        for &byte in bytes {
            self.step(byte);
        }
    }

    fn step(&mut self, byte: u8) {
        if !self.started {
            if !byte.is_ascii_whitespace() {
                self.started = true;
                self.object = byte == b'{';
                self.depth = 1;
                self.expecting_key = true;
            }
            return;
        }
        if !self.object || self.depth == 0 {
            return;
        }
        let was_in_id = self.in_id;
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                self.in_key = false;
            } else if self.in_key {
                if self.key.len() < MAX_SCANNED_KEY_BYTES {
                    self.key.push(byte);
                } else {
                    self.key_too_long = true;
                }
            }
        } else {
            match byte {
                b'"' => {
                    self.in_string = true;
                    self.in_key = self.depth == 1 && self.expecting_key;
                    if self.in_key {
                        self.key.clear();
                        self.key_too_long = false;
                    }
                }
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.in_id = false;
                        self.closed = true;
                    }
                }
                b':' if self.depth == 1 && self.expecting_key => {
                    self.expecting_key = false;
                    let key: &[u8] = if self.key_too_long { b"" } else { &self.key };
                    match key {
                        b"id" => {
                            self.has_id = true;
                            self.in_id = true;
                            self.id.clear();
                            self.id_too_long = false;
                        }
                        b"method" => self.has_method = true,
                        b"result" | b"error" => self.has_outcome = true,
                        _ => {}
                    }
                }
                b',' if self.depth == 1 => {
                    self.expecting_key = true;
                    self.in_id = false;
                }
                _ => {}
            }
        }
        if was_in_id && self.in_id {
            if self.id.len() < MAX_ECHOED_ID_BYTES {
                self.id.push(byte);
            } else {
                self.id_too_long = true;
            }
        }
    }

    /// The refusal of the over-long line scanned, with its answer (`None` when it must get
    /// none).
    fn refusal(self, max_line_bytes: usize) -> Refused {
        Refused::new(
            self.size_bytes,
            FrameRefusalReason::Oversize,
            self.answer(max_line_bytes),
        )
    }

    fn answer(&self, max_line_bytes: usize) -> Option<Vec<u8>> {
        let shape = Shape::of(self.has_id, self.has_method, self.has_outcome);
        // An unclosed object is broken JSON, answered whatever it was meant to be.
        if self.closed && !shape.is_answered() {
            return None;
        }
        let id = (self.object && self.has_id && !self.id_too_long)
            .then(|| serde_json::from_slice::<&RawValue>(self.id.trim_ascii()).ok())
            .flatten()
            .and_then(echoable_id);
        let reason = format!("the message is longer than {max_line_bytes} bytes");
        refusal(Refusal::invalid_request(reason), id)
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{JsonRpcMessage, NumberOrString};
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

    use super::*;

    fn refused(line: &str) -> Refused {
        match decode(line.as_bytes(), &mut SurrogateIds::default()) {
            Decoded::Refused(refused) => refused,
            other => panic!("{line} was not refused: {other:?}"),
        }
    }

    fn answer(line: &str) -> Option<Value> {
        refused(line)
            .answer
            .map(|frame| serde_json::from_slice(&frame).unwrap())
    }

    fn assert_refused(line: &str, code: i64, id: Value) {
        let answer = answer(line).unwrap_or_else(|| panic!("{line} got no answer"));
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["error"]["code"], code, "{line}: {answer}");
        assert_eq!(answer["id"], id, "{line}: {answer}");
        assert!(answer.as_object().unwrap().contains_key("id"));
    }

    #[test]
    fn a_line_that_is_not_json_is_a_parse_error_with_a_null_id() {
        let frame = refused("{not json").answer.unwrap();
        assert_eq!(
            frame,
            b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}\n"
        );
        assert_refused(
            r#"{"jsonrpc":"2.0","id":3,"method":"ping""#,
            -32700,
            Value::Null,
        );
        assert_refused("\u{feff}nope", -32700, Value::Null);
    }

    #[test]
    fn a_number_too_large_to_parse_is_a_parse_error_that_keeps_the_id() {
        assert_refused(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ibkr_health","arguments":{"x":1e400}}}"#,
            -32700,
            json!(7),
        );
    }

    #[test]
    fn json_that_is_no_message_is_an_invalid_request_that_echoes_a_readable_id() {
        assert_refused(
            r#"{"jsonrpc":"2.0","id":[4],"method":"tools/list"}"#,
            -32600,
            Value::Null,
        );
        assert_refused(
            r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#,
            -32600,
            json!("a"),
        );
        assert_refused(r#"{"jsonrpc":"2.0","id":9,"method":5}"#, -32600, json!(9));
        assert_refused(
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            -32600,
            Value::Null,
        );
        assert_refused(r#"{"id":9}"#, -32600, json!(9));
        assert_refused("{}", -32600, Value::Null);
        assert_refused("[]", -32600, Value::Null);
        assert_refused(
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            -32600,
            Value::Null,
        );
        assert_refused(r#"[4, "tools/list"]"#, -32600, Value::Null);
        assert_refused("42", -32600, Value::Null);
        let answer = answer(r#"{"jsonrpc":"2.0","id":9,"method":5}"#).unwrap();
        assert!(answer["error"]["data"]["reason"].is_string(), "{answer}");
    }

    #[test]
    fn malformed_notifications_and_responses_get_no_answer() {
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":5}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/x","params":{"n":1e400}}"#,
            r#"{"jsonrpc":"1.0","method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":5,"error":{}}"#,
            r#"{"jsonrpc":"2.0","error":"x"}"#,
        ] {
            assert!(answer(line).is_none(), "{line} was answered");
        }
        for blank in ["", "  \r"] {
            let decoded = decode(blank.as_bytes(), &mut SurrogateIds::default());
            assert!(matches!(decoded, Decoded::Blank), "{blank:?}");
        }
    }

    #[test]
    fn valid_messages_decode() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\r",
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"tools/list\"}",
        ] {
            assert!(
                matches!(
                    decode(line.as_bytes(), &mut SurrogateIds::default()),
                    Decoded::Message(_)
                ),
                "{line}"
            );
        }
    }

    fn scan(text: &str) -> Option<Value> {
        let mut scanner = MemberScanner::default();
        // Byte by byte and in one go must agree.
        let mut chunked = MemberScanner::default();
        scanner.feed(text.as_bytes());
        for byte in text.as_bytes() {
            chunked.feed(std::slice::from_ref(byte));
        }
        let whole = scanner.refusal(10);
        assert_eq!(whole, chunked.refusal(10), "{text}");
        assert_eq!(whole.record.reason, FrameRefusalReason::Oversize);
        assert_eq!(whole.record.size_bytes, text.len() as u64);
        whole
            .answer
            .map(|frame| serde_json::from_slice(&frame).unwrap())
    }

    #[test]
    fn the_scanner_finds_the_top_level_id_wherever_it_is() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":12,"method":"x","params":{"id":3}}"#,
                json!(12),
            ),
            (
                r#"{"method":"x","params":{"id":3,"s":"\"id\":4"},"jsonrpc":"2.0","id":"abc"}"#,
                json!("abc"),
            ),
            (r#" { "id" : "a\"b" , "method":"x"}"#, json!("a\"b")),
            (
                r#"{"params":{"a":[1,{"id":2}]},"method":"x","id":-5}"#,
                json!(-5),
            ),
            (r#"{"id":{"nested":1},"method":"x"}"#, Value::Null),
            (r#"{"id":null,"method":"x"}"#, Value::Null),
            (r#"{"method":"x","params":"truncated"#, Value::Null),
            (r#"{"id":77,"method":"x","params":"truncated"#, json!(77)),
            ("[1,2,3]", Value::Null),
            ("garbage", Value::Null),
        ];
        for (text, id) in cases {
            let answer = scan(text).unwrap_or_else(|| panic!("{text} got no answer"));
            assert_eq!(answer["error"]["code"], -32600, "{text}");
            assert_eq!(answer["id"], id, "{text}");
        }
    }

    #[test]
    fn the_scanner_does_not_answer_notifications_or_responses() {
        for text in [
            r#"{"jsonrpc":"2.0","method":"notifications/x","params":{"id":1}}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{"method":"x"}}"#,
        ] {
            assert!(scan(text).is_none(), "{text}");
        }
    }

    #[test]
    fn an_over_long_id_is_not_echoed() {
        let id = "i".repeat(MAX_ECHOED_ID_BYTES + 1);
        let text = format!(r#"{{"id":"{id}","method":"x"}}"#);
        assert_eq!(scan(&text).unwrap()["id"], Value::Null);
    }

    /// A transport on one end of a pipe, its writer, and the client's ends.
    fn pipe(
        max_line_bytes: usize,
    ) -> (
        LineTransport<DuplexStream>,
        FrameWriter,
        DuplexStream,
        BufReader<DuplexStream>,
    ) {
        let (client_out, server_in) = tokio::io::duplex(1024);
        let (server_out, client_in) = tokio::io::duplex(1 << 16);
        let (transport, writer) = line_transport(server_in, server_out, None);
        let transport = transport.with_max_line_bytes(max_line_bytes);
        (transport, writer, client_out, BufReader::new(client_in))
    }

    async fn next_frame(output: &mut BufReader<DuplexStream>) -> Value {
        let mut line = String::new();
        output.read_line(&mut line).await.unwrap();
        assert!(line.ends_with('\n'), "{line:?}");
        serde_json::from_str(&line).unwrap()
    }

    async fn rest(output: &mut BufReader<DuplexStream>) -> String {
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(output, &mut rest)
            .await
            .unwrap();
        rest
    }

    fn is_request(message: &RxJsonRpcMessage<RoleServer>, id: i64) -> bool {
        matches!(message, JsonRpcMessage::Request(request) if request.id == NumberOrString::Number(id))
    }

    fn error_answer(id: i64) -> TxJsonRpcMessage<RoleServer> {
        JsonRpcMessage::error(
            rmcp::ErrorData::invalid_params("x", None),
            Some(NumberOrString::Number(id)),
        )
    }

    const FINISH: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn an_over_long_line_is_refused_without_being_held_and_the_next_line_is_read() {
        let (mut transport, writer, mut input, mut output) = pipe(64);
        let client = tokio::spawn(async move {
            let padding = "p".repeat(100_000);
            let long = format!(
                r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"q":"{padding}"}},"id":41}}"#
            );
            input.write_all(long.as_bytes()).await.unwrap();
            input.write_all(b"\n").await.unwrap();
            input
                .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"ping\"}\n")
                .await
                .unwrap();
            input
        });
        let message = transport.receive().await.unwrap();
        assert!(is_request(&message, 42), "{message:?}");
        assert!(transport.line.capacity() <= 64);
        let refusal = next_frame(&mut output).await;
        assert_eq!(refusal["id"], 41, "{refusal}");
        assert_eq!(refusal["error"]["code"], -32600);
        drop(client.await.unwrap());
        assert!(transport.receive().await.is_none());
        transport.close().await.unwrap();
        writer.finish(FINISH).await;
        assert_eq!(rest(&mut output).await, "");
    }

    #[tokio::test]
    async fn refusals_and_answers_are_whole_lines_and_end_of_input_ends_the_session() {
        let (mut transport, writer, mut input, mut output) = pipe(MAX_LINE_BYTES);
        input
            .write_all(b"{not json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}")
            .await
            .unwrap();
        drop(input);
        // The unterminated last line still counts.
        let message = transport.receive().await.unwrap();
        assert!(is_request(&message, 1), "{message:?}");
        transport.send(error_answer(1)).await.unwrap();
        assert!(transport.receive().await.is_none());
        transport.close().await.unwrap();
        assert!(transport.send(error_answer(2)).await.is_err());
        writer.finish(FINISH).await;
        let parse_error = next_frame(&mut output).await;
        assert_eq!(parse_error["error"]["code"], -32700);
        let answer = next_frame(&mut output).await;
        assert_eq!(answer["id"], 1);
        assert_eq!(rest(&mut output).await, "");
    }

    #[tokio::test]
    async fn frames_queued_before_the_transport_is_dropped_unclosed_are_still_written() {
        let (mut transport, writer, mut input, mut output) = pipe(MAX_LINE_BYTES);
        input.write_all(b"{not json\n").await.unwrap();
        drop(input);
        assert!(transport.receive().await.is_none());
        let answer = transport.send(error_answer(3));
        // As rmcp does when the input ends before the handshake.
        drop(transport);
        answer.await.unwrap();
        writer.finish(FINISH).await;
        assert_eq!(next_frame(&mut output).await["error"]["code"], -32700);
        assert_eq!(next_frame(&mut output).await["id"], 3);
        assert_eq!(rest(&mut output).await, "");
    }

    #[tokio::test]
    async fn a_partial_line_survives_a_cancelled_receive() {
        let (mut transport, _writer, mut input, _output) = pipe(MAX_LINE_BYTES);
        input
            .write_all(br#"{"jsonrpc":"2.0","id":5,"#)
            .await
            .unwrap();
        let cancelled = tokio::time::timeout(Duration::from_millis(20), transport.receive()).await;
        assert!(cancelled.is_err());
        input.write_all(b"\"method\":\"ping\"}\n").await.unwrap();
        let message = transport.receive().await.unwrap();
        assert!(is_request(&message, 5), "{message:?}");
    }

    #[test]
    fn every_refused_line_carries_its_size_and_reason_and_blank_lines_are_no_frames() {
        let cases = [
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call"}]"#,
                FrameRefusalReason::Batch,
            ),
            ("[]", FrameRefusalReason::Batch),
            ("{not json", FrameRefusalReason::ParseError),
            ("[1,", FrameRefusalReason::ParseError),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"n":1e400}}}"#,
                FrameRefusalReason::ParseError,
            ),
            (
                r#"{"jsonrpc":"2.0","id":9,"method":5}"#,
                FrameRefusalReason::InvalidMessage,
            ),
            ("42", FrameRefusalReason::InvalidMessage),
            // Unanswered, and still recorded.
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":5}"#,
                FrameRefusalReason::InvalidMessage,
            ),
        ];
        for (line, reason) in cases {
            let refused = refused(line);
            assert_eq!(refused.record.reason, reason, "{line}");
            assert_eq!(refused.record.size_bytes, line.len() as u64, "{line}");
        }
        assert_eq!(refused("{not json\r").record.size_bytes, 10);
    }

    fn answer_text(line: &str) -> String {
        String::from_utf8(refused(line).answer.unwrap()).unwrap()
    }

    #[test]
    fn refusals_echo_a_numeric_id_exactly_as_written() {
        for id in [
            "123456789012345678901234567890",
            "-12",
            "1.50",
            "1E2",
            "1e400",
            r#""a\u0062""#,
        ] {
            let text = answer_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":5}}"#));
            assert!(text.contains(&format!(r#""id":{id},"#)), "{id}: {text}");
        }
        let mut scanner = MemberScanner::default();
        scanner.feed(br#"{"id": 123456789012345678901234567890 ,"method":"x","params":"long"}"#);
        let text = String::from_utf8(scanner.refusal(10).answer.unwrap()).unwrap();
        assert!(
            text.contains(r#""id":123456789012345678901234567890,"#),
            "{text}"
        );
    }

    #[test]
    fn a_request_id_too_long_to_keep_is_refused_with_a_null_id() {
        let id = "9".repeat(MAX_ECHOED_ID_BYTES + 1);
        let refused = refused(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#));
        assert_eq!(refused.record.reason, FrameRefusalReason::UnsupportedId);
        let answer: Value = serde_json::from_slice(&refused.answer.unwrap()).unwrap();
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(answer["error"]["code"], -32600);
    }

    #[test]
    fn surrogates_are_bounded_and_given_back_when_answered() {
        let mut ids = SurrogateIds::default();
        let raw = RawValue::from_string("1.5".to_owned()).unwrap();
        let issued: Vec<_> = (0..MAX_SURROGATE_IDS)
            .map(|_| ids.issue(&raw).unwrap())
            .collect();
        assert!(ids.issue(&raw).is_none());
        let line = r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#;
        let refused = match decode(line.as_bytes(), &mut ids) {
            Decoded::Refused(refused) => refused,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused.record.reason, FrameRefusalReason::UnsupportedId);
        let text = String::from_utf8(refused.answer.unwrap()).unwrap();
        assert!(text.contains(r#""id":1.5,"#), "{text}");
        let answered = NumberOrString::String(Arc::clone(&issued[0]));
        assert_eq!(ids.take(&answered).unwrap().get(), "1.5");
        assert!(ids.take(&answered).is_none());
        assert!(ids.issue(&raw).is_some());
    }

    fn answer_to(id: NumberOrString, error: bool) -> TxJsonRpcMessage<RoleServer> {
        if error {
            return JsonRpcMessage::error(rmcp::ErrorData::invalid_params("x", None), Some(id));
        }
        serde_json::from_value(json!({"jsonrpc": "2.0", "id": id, "result": {}})).unwrap()
    }

    fn request_id(message: &RxJsonRpcMessage<RoleServer>) -> NumberOrString {
        match message {
            JsonRpcMessage::Request(request) => request.id.clone(),
            other => panic!("not a request: {other:?}"),
        }
    }

    #[tokio::test]
    async fn answers_carry_the_id_exactly_as_the_client_wrote_it() {
        let (mut transport, writer, mut input, mut output) = pipe(MAX_LINE_BYTES);
        let ids = [
            ("123456789012345678901234567890", true),
            ("-123456789012345678901234567890", true),
            ("18446744073709551616", true),
            ("1.5", true),
            ("1e2", true),
            ("-0", true),
            ("-7", false),
            ("9223372036854775807", false),
            (r#""ibkr-agent-gateway/id/1""#, true),
            (r#""abc""#, false),
        ];
        for (id, surrogate) in ids {
            for error in [false, true] {
                let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n");
                input.write_all(line.as_bytes()).await.unwrap();
                let message = transport.receive().await.unwrap();
                let seen = request_id(&message);
                let is_surrogate = matches!(&seen, NumberOrString::String(text) if text.starts_with(SURROGATE_PREFIX));
                assert_eq!(is_surrogate, surrogate, "{id}: {seen:?}");
                transport.send(answer_to(seen, error)).await.unwrap();
                let mut frame = String::new();
                output.read_line(&mut frame).await.unwrap();
                assert!(frame.contains(&format!(r#""id":{id}"#)), "{id}: {frame}");
                assert!(
                    !frame.contains(SURROGATE_PREFIX) || id.contains(SURROGATE_PREFIX),
                    "{frame}"
                );
            }
        }
        assert!(transport.ids.live.is_empty());
        drop(input);
        transport.close().await.unwrap();
        writer.finish(FINISH).await;
    }

    #[tokio::test]
    async fn a_cancellation_names_the_surrogate_of_the_request_it_cancels() {
        let (mut transport, _writer, mut input, _output) = pipe(MAX_LINE_BYTES);
        input
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":123456789012345678901234567890,\"method\":\"ping\"}\n")
            .await
            .unwrap();
        let seen = request_id(&transport.receive().await.unwrap());
        input
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":123456789012345678901234567890}}\n")
            .await
            .unwrap();
        let cancellation = serde_json::to_value(transport.receive().await.unwrap()).unwrap();
        assert_eq!(
            cancellation["params"]["requestId"],
            json!(seen),
            "{cancellation}"
        );
        assert!(transport.ids.live.is_empty());
    }

    /// Keeps what it is asked to record.
    #[derive(Default)]
    struct KeptRefusals(std::sync::Mutex<Vec<FrameRefusal>>);

    #[async_trait::async_trait]
    impl RefusalRecorder for KeptRefusals {
        async fn record(&self, refusal: FrameRefusal) {
            self.0.lock().unwrap().push(refusal);
        }
    }

    #[tokio::test]
    async fn each_refused_line_is_recorded_once_and_still_answered() {
        let (client_out, server_in) = tokio::io::duplex(1024);
        let (server_out, client_in) = tokio::io::duplex(1 << 16);
        let kept = Arc::new(KeptRefusals::default());
        let (transport, writer) = line_transport(server_in, server_out, Some(kept.clone()));
        let mut transport = transport.with_max_line_bytes(64);
        let (mut input, mut output) = (client_out, BufReader::new(client_in));
        let long = format!(r#"{{"id":3,"method":"x","params":"{}"}}"#, "p".repeat(100));
        let lines = format!(
            "[{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}}]\n\n{{not json\n{long}\n{{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}}\n"
        );
        input.write_all(lines.as_bytes()).await.unwrap();
        drop(input);
        let message = transport.receive().await.unwrap();
        assert!(is_request(&message, 4), "{message:?}");
        assert!(transport.receive().await.is_none());
        transport.close().await.unwrap();
        writer.finish(FINISH).await;
        let recorded = kept.0.lock().unwrap().clone();
        let expected = [
            (FrameRefusalReason::Batch, 42),
            (FrameRefusalReason::ParseError, 9),
            (FrameRefusalReason::Oversize, long.len() as u64),
        ];
        let recorded: Vec<_> = recorded.iter().map(|r| (r.reason, r.size_bytes)).collect();
        assert_eq!(recorded, expected);
        let codes = [
            next_frame(&mut output).await["error"]["code"].clone(),
            next_frame(&mut output).await["error"]["code"].clone(),
            next_frame(&mut output).await["error"]["code"].clone(),
        ];
        assert_eq!(codes, [json!(-32600), json!(-32700), json!(-32600)]);
        assert_eq!(rest(&mut output).await, "");
    }
}
