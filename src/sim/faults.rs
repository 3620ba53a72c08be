//! Misbehaviour on the wire, for the simulator: answers whose body comes
//! slowly, is cut off or is huge, connections dropped without an answer,
//! and the gentle random mix of faults that `demo --demo.faults` turns on.
//!
//! A [`Reply`] carries a [`Fault`]; [`respond`] turns it into what hyper
//! sends. Streaming bodies are fed by a small task through a channel, so a
//! huge body never sits in memory whole and a slow one really pauses.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use hyper::body::{Body, Frame, SizeHint};
use rand::Rng;
use tokio::sync::mpsc;

use super::{Reply, Simulator};

/// How an answer misbehaves on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    /// None: the answer is sent at once and whole.
    #[default]
    None,
    /// The body comes in chunks of `chunk` bytes with `pause` before each.
    SlowBody {
        /// Bytes per chunk (at least 1).
        chunk: usize,
        /// The pause before each chunk.
        pause: Duration,
    },
    /// The connection is closed without any answer.
    Drop,
    /// The whole body's length is announced, only its first `sent` bytes
    /// are sent, then the connection is closed.
    Truncate {
        /// How many bytes go out before the close.
        sent: usize,
    },
    /// A body of `bytes` spaces, streamed; with `announce` its length is in
    /// `Content-Length`, without it the body is chunked.
    Huge {
        /// The body size.
        bytes: u64,
        /// Whether `Content-Length` says how large it is.
        announce: bool,
    },
}

impl Reply {
    /// The same answer, misbehaving as `fault` says.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }
}

impl Simulator {
    /// Makes `project_id` answer `failure` `n` times before its usual answer.
    pub fn fail_first(&self, project_id: &str, n: usize, failure: Reply) {
        self.script(project_id, std::iter::repeat_n(failure, n));
    }

    /// Turns on a random fault `mix` for every answer that is not scripted.
    pub fn set_fault_mix(&self, mix: Option<FaultMix>) {
        self.state.lock().fault_mix = mix;
    }
}

/// The share of unscripted answers that fail, by kind (each from 0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultMix {
    /// 503 with a DBSS error body.
    pub unavailable: f64,
    /// 429 with `Retry-After: 1`.
    pub throttled: f64,
    /// A body sent slowly over about two seconds.
    pub slow: f64,
    /// A connection dropped without an answer.
    pub dropped: f64,
}

impl FaultMix {
    /// The demo's mix: 5 % 503, 3 % 429, 2 % slow, 1 % dropped.
    pub fn gentle() -> Self {
        FaultMix {
            unavailable: 0.05,
            throttled: 0.03,
            slow: 0.02,
            dropped: 0.01,
        }
    }

    /// Either `reply` as it is, or a fault drawn from the mix.
    pub fn disturb(&self, reply: Reply) -> Reply {
        let roll: f64 = rand::thread_rng().gen();
        let mut edge = self.unavailable;
        if roll < edge {
            return Reply::json(
                503,
                &super::error_body("DBSS.11000000", "Service unavailable, try again later"),
            );
        }
        edge += self.throttled;
        if roll < edge {
            return Reply::json(
                429,
                &super::error_body("APIGW.0308", "The throttling threshold has been reached"),
            )
            .with_header("Retry-After", "1");
        }
        edge += self.slow;
        if roll < edge {
            let chunk = reply.body.len() / 4 + 1;
            let pause = Duration::from_millis(500);
            return reply.with_fault(Fault::SlowBody { chunk, pause });
        }
        edge += self.dropped;
        if roll < edge {
            return reply.with_fault(Fault::Drop);
        }
        reply
    }
}

/// The connection was dropped on purpose; hyper closes it unanswered.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a scripted fault")]
pub struct Dropped;

type Chunk = Result<Frame<Bytes>, std::io::Error>;

/// The simulator's response body: whole, or fed by a task.
#[derive(Debug)]
pub enum SimBody {
    /// The whole body, sent at once.
    Whole(Option<Bytes>),
    /// Chunks from a feeding task, with the size announced, if any.
    Streamed(mpsc::Receiver<Chunk>, Option<u64>),
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        match &mut *self {
            SimBody::Whole(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Streamed(rx, _) => rx.poll_recv(cx),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Whole(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Whole(None) => SizeHint::with_exact(0),
            SimBody::Streamed(_, Some(n)) => SizeHint::with_exact(*n),
            SimBody::Streamed(_, None) => SizeHint::default(),
        }
    }
}

/// Sends `reply` through `builder` (status and headers already set), or
/// drops the connection.
pub fn respond(
    builder: http::response::Builder,
    reply: Reply,
) -> Result<Response<SimBody>, Dropped> {
    let body = match reply.fault {
        Fault::Drop => return Err(Dropped),
        Fault::None => SimBody::Whole(Some(reply.body)),
        Fault::SlowBody { chunk, pause } => slow(reply.body, chunk.max(1), pause),
        Fault::Truncate { sent } => truncated(reply.body, sent),
        Fault::Huge { bytes, announce } => huge(bytes, announce),
    };
    Ok(builder.body(body).unwrap_or_else(|_| {
        Response::new(SimBody::Whole(Some(Bytes::from_static(
            b"bad scripted header",
        ))))
    }))
}

fn slow(body: Bytes, chunk: usize, pause: Duration) -> SimBody {
    let len = body.len() as u64;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for piece in body.chunks(chunk) {
            tokio::time::sleep(pause).await;
            if tx
                .send(Ok(Frame::data(body.slice_ref(piece))))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    SimBody::Streamed(rx, Some(len))
}

fn truncated(body: Bytes, sent: usize) -> SimBody {
    let len = body.len() as u64;
    let head = body.slice(..sent.min(body.len()));
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Frame::data(head))).await;
        // Give the bytes time to leave before the connection is cut.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let cut = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "truncated");
        let _ = tx.send(Err(cut)).await;
    });
    SimBody::Streamed(rx, Some(len))
}

fn huge(bytes: u64, announce: bool) -> SimBody {
    const PIECE: usize = 64 * 1024;
    let filler = Bytes::from(vec![b' '; PIECE]);
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            if tx.send(Ok(Frame::data(filler.slice(..n)))).await.is_err() {
                return;
            }
            left -= n as u64;
        }
    });
    SimBody::Streamed(rx, announce.then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_mix_leaves_answers_alone() {
        let mix = FaultMix {
            unavailable: 0.0,
            throttled: 0.0,
            slow: 0.0,
            dropped: 0.0,
        };
        for _ in 0..100 {
            let r = mix.disturb(Reply::raw(200, "{}"));
            assert_eq!((r.status, r.fault), (200, Fault::None));
        }
    }

    #[test]
    fn a_full_mix_always_disturbs() {
        let mix = FaultMix {
            unavailable: 0.25,
            throttled: 0.25,
            slow: 0.25,
            dropped: 0.25,
        };
        for _ in 0..200 {
            let r = mix.disturb(Reply::raw(200, "{}"));
            assert!(r.status != 200 || r.fault != Fault::None, "{r:?}");
            if r.status == 429 {
                assert_eq!(r.headers, [("Retry-After".into(), "1".into())]);
            }
        }
    }
}
