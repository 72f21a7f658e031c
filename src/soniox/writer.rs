// SPDX-License-Identifier: MPL-2.0
//! The sending half of a connection: one frame at a time, and never in the way of the
//! reading half.
//!
//! A frame being sent is a future of its own that owns the sink until the frame is out, so
//! the connection keeps reading (results, pongs, errors) while a send waits for the socket,
//! and it can tell how long a send has been stuck.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

type Sending<S> = Pin<Box<dyn Future<Output = (S, Result<(), tungstenite::Error>)> + Send>>;

pub(super) struct Writer<S> {
    /// The sink, while no frame is on its way.
    idle: Option<S>,
    /// The frame on its way, and when it was started.
    sending: Option<(Instant, Sending<S>)>,
}

impl<S> Writer<S>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin + Send + 'static,
{
    pub fn new(sink: S) -> Writer<S> {
        Writer {
            idle: Some(sink),
            sending: None,
        }
    }

    /// Whether a new frame may be started.
    pub fn is_idle(&self) -> bool {
        self.idle.is_some()
    }

    /// When the frame still on its way was started.
    pub fn busy_since(&self) -> Option<Instant> {
        self.sending.as_ref().map(|(since, _)| *since)
    }

    /// Starts sending `message`. Only while idle: the caller checks [`Writer::is_idle`].
    pub fn start(&mut self, message: Message) {
        let Some(mut sink) = self.idle.take() else {
            debug_assert!(false, "a frame is already on its way");
            return;
        };
        let sending: Sending<S> = Box::pin(async move {
            let result = sink.send(message).await;
            (sink, result)
        });
        self.sending = Some((Instant::now(), sending));
    }

    /// Waits until the frame on its way is out; never returns while idle. Cancel-safe: the
    /// frame stays on its way when the wait is dropped.
    pub async fn sent(&mut self) -> Result<(), tungstenite::Error> {
        let Some((_, sending)) = self.sending.as_mut() else {
            return std::future::pending().await;
        };
        let (sink, result) = sending.await;
        self.sending = None;
        self.idle = Some(sink);
        result
    }

    /// Lets the frame on its way go out, then closes the connection; gives up after `limit`.
    pub async fn close(mut self, limit: Duration) {
        let _ = timeout(limit, async {
            if self.sending.is_some() && self.sent().await.is_err() {
                return;
            }
            if let Some(sink) = self.idle.as_mut() {
                let _ = sink.close().await;
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::sync::Semaphore;

    /// A sink that records frames, each once `gate` gives a permit.
    fn gated_sink(
        log: Arc<Mutex<Vec<Message>>>,
        gate: Arc<Semaphore>,
    ) -> impl Sink<Message, Error = tungstenite::Error> + Unpin + Send + 'static {
        Box::pin(futures_util::sink::unfold(
            (log, gate),
            |(log, gate), message: Message| async move {
                gate.acquire().await.expect("open").forget();
                log.lock().unwrap().push(message);
                Ok::<_, tungstenite::Error>((log, gate))
            },
        ))
    }

    #[tokio::test]
    async fn a_stuck_frame_keeps_the_writer_busy_and_nothing_else_waits_on_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let mut writer = Writer::new(gated_sink(log.clone(), gate.clone()));
        assert!(writer.is_idle() && writer.busy_since().is_none());
        writer.start(Message::text("one"));
        assert!(!writer.is_idle() && writer.busy_since().is_some());
        // The socket takes nothing: the wait can be dropped, the frame stays on its way.
        tokio::select! {
            biased;
            _ = writer.sent() => panic!("sent through a closed gate"),
            () = tokio::task::yield_now() => {}
        }
        assert!(log.lock().unwrap().is_empty());
        gate.add_permits(1);
        writer.sent().await.unwrap();
        assert!(writer.is_idle());
        writer.start(Message::text("two"));
        gate.add_permits(1);
        writer.sent().await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [Message::text("one"), Message::text("two")]
        );
    }
}
