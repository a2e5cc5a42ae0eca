//! Newline-delimited JSON-RPC over a byte stream (the server's stdin and stdout) that answers
//! what it cannot decode instead of dropping it, so a client waiting on a request always hears
//! back and the session goes on.
//!
//! - A line that is not JSON gets `-32700 Parse error`; JSON that is not a JSON-RPC message
//!   gets `-32600 Invalid Request`. Both echo the request's id when one can be read (a string
//!   or a number) and use `null` otherwise, as JSON-RPC 2.0 §5 asks. A JSON number too large
//!   for the parser (`1e400`) is a parse error, but its id is still readable and echoed.
//! - A line longer than [`MAX_LINE_BYTES`] is refused with `-32600` without being held: once
//!   over the limit its bytes only pass through a [`MemberScanner`], which keeps the `id`.
//! - A malformed notification (a `method` and no `id`) and a malformed response (`result` or
//!   `error` and no `method`) get no answer: JSON-RPC never answers either, and answering a
//!   peer's broken error could start an error storm.
//!
//! Every frame, answers from the service and refusals from the reader alike, is one complete
//! line handed to a single writer task over a bounded queue, so frames never interleave and
//! stdout only ever carries whole JSON lines. The writer sends what is queued in one write and
//! flushes whenever the queue runs dry. Its owner keeps a [`FrameWriter`] and waits on it after
//! the session, because rmcp drops a transport without closing it when the session ends
//! before the handshake, and frames queued by then must still go out.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use rmcp::model::ErrorCode;
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The longest line accepted, without its newline. Longer lines are refused unread.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Frames waiting for the writer before `send` waits: backpressure on a client that stops
/// reading stdout.
const WRITE_QUEUE_FRAMES: usize = 1024;
/// The most frames written between two flushes while the queue stays busy.
const MAX_BATCH_FRAMES: usize = 64;
/// Read and write buffer sizes.
const IO_BUFFER_BYTES: usize = 64 * 1024;
/// A line buffer grown past this by one large message is released after it.
const KEPT_LINE_CAPACITY: usize = 256 * 1024;
/// The longest `id` the scanner of an over-long line keeps; a longer one is answered as `null`.
const MAX_SCANNED_ID_BYTES: usize = 1024;
/// The longest member name the scanner compares; the names it looks for are shorter.
const MAX_SCANNED_KEY_BYTES: usize = 8;
/// The longest parser message passed on in an Invalid Request answer.
const MAX_REASON_CHARS: usize = 200;

/// A [`Transport`] for the server role over newline-delimited JSON.
pub(super) struct LineTransport<R> {
    reader: BufReader<R>,
    /// The line read so far. It survives a cancelled `receive` (rmcp polls `receive` inside
    /// a `select!`), so a partly read line is resumed, not lost.
    line: Vec<u8>,
    max_line_bytes: usize,
    /// Set while the rest of an over-long line is skipped; also survives cancellation.
    skipping: Option<MemberScanner>,
    /// A refusal waiting for room in the write queue. Held here rather than across an await
    /// so a cancelled `receive` does not lose it.
    pending_refusal: Option<Vec<u8>>,
    /// The write queue; `None` once closed.
    frames: Option<mpsc::Sender<Vec<u8>>>,
}

/// The task writing a [`LineTransport`]'s frames. It ends once the transport is closed or
/// dropped and every frame queued before is written.
#[must_use = "wait on it with `finish` so queued frames are written before the process exits"]
pub(super) struct FrameWriter {
    task: JoinHandle<()>,
}

impl FrameWriter {
    /// Waits, at most `limit`, for the writer to write every queued frame and end; the
    /// transport must be closed or dropped first. A writer still blocked after `limit` (a
    /// client that stopped reading) is stopped.
    pub(super) async fn finish(self, limit: Duration) {
        let abort = self.task.abort_handle();
        match tokio::time::timeout(limit, self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the MCP output task failed"),
            Err(_elapsed) => {
                abort.abort();
                tracing::warn!("queued MCP frames were not written in time and are dropped");
            }
        }
    }
}

/// A transport reading `reader`, and the task, spawned on the current runtime, that writes its
/// frames to `writer`.
pub(super) fn line_transport<R, W>(reader: R, writer: W) -> (LineTransport<R>, FrameWriter)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (frames, queued) = mpsc::channel(WRITE_QUEUE_FRAMES);
    let transport = LineTransport {
        reader: BufReader::with_capacity(IO_BUFFER_BYTES, reader),
        line: Vec::new(),
        max_line_bytes: MAX_LINE_BYTES,
        skipping: None,
        pending_refusal: None,
        frames: Some(frames),
    };
    let task = tokio::spawn(write_frames(writer, queued));
    (transport, FrameWriter { task })
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

    /// Queues the pending refusal, waiting for room. Cancel-safe: the refusal stays pending
    /// until a permit is in hand, and sending on a permit does not wait.
    async fn flush_refusal(&mut self) {
        let Some(frames) = self.frames.as_ref() else {
            self.pending_refusal = None;
            return;
        };
        let permit = frames.reserve().await;
        let refusal = self.pending_refusal.take();
        match (permit, refusal) {
            (Ok(permit), Some(refusal)) => permit.send(refusal),
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
        let decoded = decode(&self.line);
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
        let frame = encode(&item);
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
                    Decoded::Refused(refusal) => self.pending_refusal = refusal,
                },
                LineRead::Oversize(scanner) => {
                    tracing::debug!(
                        max_line_bytes = self.max_line_bytes,
                        "refusing an over-long line"
                    );
                    self.pending_refusal = scanner.refusal(self.max_line_bytes);
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
        // The writer ends once every sender is gone and the queue is drained; the owner of
        // the `FrameWriter` waits for that.
        drop(self.frames.take());
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
enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Not a message: the answer to send, if any.
    Refused(Option<Vec<u8>>),
}

/// The UTF-8 byte order mark, which RFC 8259 §8.1 lets a parser ignore.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn decode(line: &[u8]) -> Decoded {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
    if line.trim_ascii().is_empty() {
        return Decoded::Refused(None);
    }
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => Decoded::Message(Box::new(message)),
        Err(error) => Decoded::Refused(refuse(line, &error)),
    }
}

/// The answer to a line rmcp could not decode, or `None` when it must get none.
fn refuse(line: &[u8], error: &serde_json::Error) -> Option<Vec<u8>> {
    let is_object = line.trim_ascii_start().first() == Some(&b'{');
    let envelope = is_object
        .then(|| serde_json::from_slice::<Envelope>(line).ok())
        .flatten();
    let Some(envelope) = envelope else {
        // No readable envelope: either not JSON at all, or JSON of the wrong shape.
        tracing::debug!(%error, "refusing a line that is no JSON-RPC message");
        return if serde_json::from_slice::<IgnoredAny>(line).is_ok() {
            refusal(Refusal::invalid_request(error.to_string()), &Value::Null)
        } else {
            refusal(Refusal::parse_error(), &Value::Null)
        };
    };
    let shape = envelope.shape();
    tracing::debug!(%error, ?shape, "refusing a malformed JSON-RPC message");
    if !shape.is_answered() {
        return None;
    }
    let id = envelope.id.as_deref().map_or(Value::Null, echoable_id);
    let reason = match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            Refusal::parse_error()
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            Refusal::invalid_request(error.to_string())
        }
    };
    refusal(reason, &id)
}

/// The id to echo: a string or a number, as JSON-RPC allows; anything else is `null`.
fn echoable_id(raw: &RawValue) -> Value {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(id @ (Value::String(_) | Value::Number(_))) => id,
        _ => Value::Null,
    }
}

/// The members of a message that say what it is, read without materialising anything else
/// (ignored values are only scanned, so a number too large to parse does not fail this).
#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    method: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    result: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    error: Option<IgnoredAny>,
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

impl Envelope {
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

/// One refusal line: `{"jsonrpc":"2.0","id":…,"error":{…}}`, with `id` always present.
fn refusal(error: Refusal, id: &Value) -> Option<Vec<u8>> {
    #[derive(Serialize)]
    struct Frame<'a> {
        jsonrpc: &'static str,
        id: &'a Value,
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
}

impl MemberScanner {
    fn feed(&mut self, bytes: &[u8]) {
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
            if self.id.len() < MAX_SCANNED_ID_BYTES {
                self.id.push(byte);
            } else {
                self.id_too_long = true;
            }
        }
    }

    /// The answer to the over-long line scanned, or `None` when it must get none.
    fn refusal(self, max_line_bytes: usize) -> Option<Vec<u8>> {
        let shape = Shape::of(self.has_id, self.has_method, self.has_outcome);
        // An unclosed object is broken JSON, answered whatever it was meant to be.
        if self.closed && !shape.is_answered() {
            return None;
        }
        let id = if self.object && self.has_id && !self.id_too_long {
            serde_json::from_slice::<Box<RawValue>>(self.id.trim_ascii())
                .map_or(Value::Null, |raw| echoable_id(&raw))
        } else {
            Value::Null
        };
        let reason = format!("the message is longer than {max_line_bytes} bytes");
        refusal(Refusal::invalid_request(reason), &id)
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{JsonRpcMessage, NumberOrString};
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

    use super::*;

    fn answer(line: &str) -> Option<Value> {
        match decode(line.as_bytes()) {
            Decoded::Message(_) => panic!("{line} decoded as a message"),
            Decoded::Refused(refusal) => {
                refusal.map(|frame| serde_json::from_slice(&frame).unwrap())
            }
        }
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
        let frame = match decode(b"{not json") {
            Decoded::Refused(Some(frame)) => frame,
            _ => panic!("no refusal"),
        };
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
            "",
            "  \r",
        ] {
            assert!(answer(line).is_none(), "{line} was answered");
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
                matches!(decode(line.as_bytes()), Decoded::Message(_)),
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
        whole.map(|frame| serde_json::from_slice(&frame).unwrap())
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
            (r#"{"id":1e400,"method":"x"}"#, Value::Null),
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
        let id = "i".repeat(MAX_SCANNED_ID_BYTES + 1);
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
        let (transport, writer) = line_transport(server_in, server_out);
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
}
