//! The guest's stdout and stderr: kept in memory up to a cap during a call, then written to the log line
//! by line, tagged with the plugin. Past the cap, bytes are counted and dropped, never refused: a write
//! error would make a chatty guest's `println!` panic, turning logging into a crash.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of each stream kept per call.
pub(crate) const GUEST_OUTPUT_CAP: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: u64,
}

/// One capture stream (stdout or stderr of one call).
#[derive(Debug, Clone, Default)]
pub(crate) struct GuestOutput {
    captured: Arc<Mutex<Captured>>,
}

impl GuestOutput {
    /// Everything kept, and how many bytes were dropped past the cap.
    pub(crate) fn take(&self) -> (String, u64) {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&captured.kept).into_owned();
        let dropped = captured.dropped;
        *captured = Captured::default();
        (text, dropped)
    }

    /// Send what the guest wrote to the log and return it (the tail of stderr goes into trap errors).
    pub(crate) fn flush_to_log(&self, plugin: &str, stream: &'static str) -> String {
        let (text, dropped) = self.take();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(plugin, stream, "{line}");
        }
        if dropped > 0 {
            tracing::warn!(
                plugin,
                stream,
                dropped,
                "guest output over {GUEST_OUTPUT_CAP} bytes was dropped"
            );
        }
        text
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let room = GUEST_OUTPUT_CAP.saturating_sub(captured.kept.len());
        let kept = room.min(buf.len());
        captured.kept.extend_from_slice(&buf[..kept]);
        captured.dropped += (buf.len() - kept) as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_counted_not_refused() {
        let output = GuestOutput::default();
        let mut writer = output.clone();
        let chunk = vec![b'a'; GUEST_OUTPUT_CAP - 10];
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..2 {
            let written = Pin::new(&mut writer).poll_write(&mut cx, &chunk);
            assert!(matches!(written, Poll::Ready(Ok(n)) if n == chunk.len()));
        }
        let (text, dropped) = output.take();
        assert_eq!(text.len(), GUEST_OUTPUT_CAP);
        assert_eq!(dropped, (GUEST_OUTPUT_CAP - 20) as u64);
    }
}
