//! The published snapshot: every project's rendered series, joined into one
//! page that scrapes read without waiting for anything.
//!
//! Pollers hand a copy of a project's fresh state to [`Snapshot::update`]
//! (cheap: the instances are shared). A publisher task renders every
//! project into one [`Page`] (plain text plus a pre-compressed deflate
//! stream) at most once per
//! [`Snapshot::min_publish_gap`], and swaps it in atomically. A scrape loads
//! the current page with one atomic read and adds the few self-metrics that
//! change on every scrape (see [`crate::server`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::project::ProjectState;
use crate::render::render_page;

/// The identity of a target: its position decides the page order.
pub type TargetKey = (String, String);

/// The data part of `/metrics`, as of one publish.
#[derive(Debug, Default)]
pub struct Page {
    /// The exposition text of every project.
    pub plain: Bytes,
    /// `plain` as raw deflate, flushed to a byte boundary but not final, so
    /// that a scrape can append the deflate of its own lines behind it.
    pub deflate: Bytes,
    /// The CRC-32 of `plain`, for the gzip trailer.
    pub crc: crc32fast::Hasher,
    /// How many targets there were, and how many of them had been polled
    /// once, when the page was made: the page is ready when they match.
    pub readiness: (usize, usize),
}

struct Entry {
    order: usize,
    state: Arc<ProjectState>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<TargetKey, Entry>,
    /// Every target and its place on the page.
    expected: HashMap<TargetKey, usize>,
    polled: BTreeSet<TargetKey>,
}

/// All projects' series and the page made of them.
pub struct Snapshot {
    inner: Mutex<Inner>,
    page: ArcSwap<Page>,
    changed: Notify,
    /// Fired when the last target's first poll lands: that page is
    /// published without waiting out the gap, so readiness is not delayed.
    first_cycle_done: Notify,
    min_gap: Duration,
    created: Instant,
    all_polled_once: AtomicBool,
}

impl Snapshot {
    /// An empty snapshot that publishes at most once per `min_gap`.
    pub fn new(min_gap: Duration) -> Arc<Self> {
        Arc::new(Snapshot {
            inner: Mutex::new(Inner::default()),
            page: ArcSwap::from_pointee(Page::default()),
            changed: Notify::new(),
            first_cycle_done: Notify::new(),
            min_gap,
            created: Instant::now(),
            all_polled_once: AtomicBool::new(false),
        })
    }

    /// The shortest time between two publishes.
    pub fn min_publish_gap(&self) -> Duration {
        self.min_gap
    }

    /// The current page.
    pub fn page(&self) -> Arc<Page> {
        self.page.load_full()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written
        // (each update is one insert or remove), so a poisoned lock is safe.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets which targets exist, in page order; series of targets not in
    /// the list are dropped, and readiness waits for the new ones.
    pub fn set_targets(&self, keys: &[TargetKey]) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.expected = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let expected = &inner.expected;
        inner.entries.retain(|k, _| expected.contains_key(k));
        for (k, e) in inner.entries.iter_mut() {
            e.order = expected[k];
        }
        inner.polled.retain(|k| expected.contains_key(k));
        drop(guard);
        self.changed.notify_one();
    }

    /// Replaces one target's series; `polled` marks its first poll as done.
    pub fn update(&self, key: &TargetKey, state: Arc<ProjectState>, polled: bool) {
        let mut inner = self.lock();
        let Some(&order) = inner.expected.get(key) else {
            // A task of a target removed by a reload, finishing late.
            return;
        };
        inner.entries.insert(key.clone(), Entry { order, state });
        if polled {
            inner.polled.insert(key.clone());
        }
        let all = inner.polled.len() == inner.expected.len();
        let targets = inner.expected.len();
        drop(inner);
        if all && !self.all_polled_once.swap(true, Ordering::Relaxed) {
            let took = self.created.elapsed().as_secs_f64();
            tracing::info!(targets, seconds = took, "every target polled once");
            self.first_cycle_done.notify_one();
        }
        self.changed.notify_one();
    }

    /// The state last published for one target, if any.
    pub fn state_of(&self, key: &TargetKey) -> Option<Arc<ProjectState>> {
        self.lock().entries.get(key).map(|e| e.state.clone())
    }

    /// Drops one target's series (its task restarts with other labels);
    /// it stays expected, and counts as polled if it was.
    pub fn remove(&self, key: &TargetKey) {
        let removed = self.lock().entries.remove(key).is_some();
        if removed {
            self.changed.notify_one();
        }
    }

    /// Joins the current chunks into a new page and publishes it.
    pub fn publish_now(&self) {
        let (mut projects, readiness) = {
            let inner = self.lock();
            let projects: Vec<(usize, Arc<ProjectState>)> = inner
                .entries
                .values()
                .map(|e| (e.order, e.state.clone()))
                .collect();
            (projects, (inner.expected.len(), inner.polled.len()))
        };
        projects.sort_by_key(|(order, _)| *order);

        // The page is about as large as the last one.
        let last = self.page.load().plain.len();
        let hint = last + last / 64;
        let plain = render_page(hint, |family, out| {
            for (_, p) in &projects {
                p.write_family(family, out);
            }
        });
        drop(projects);
        let mut page = Page::from_plain(plain.into_bytes());
        page.readiness = readiness;
        self.page.store(Arc::new(page));
    }

    /// Publishes after each change, at most once per `min_gap`, until
    /// `cancel` fires.
    pub async fn run_publisher(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.changed.notified() => {}
            }
            let this = self.clone();
            // Compression takes milliseconds on a large page: off the runtime.
            let _ = tokio::task::spawn_blocking(move || this.publish_now()).await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.min_gap) => {}
                _ = self.first_cycle_done.notified() => {}
            }
        }
    }
}

impl Page {
    /// Builds a page from its exposition text.
    pub fn from_plain(plain: Vec<u8>) -> Self {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&plain);
        let deflate = deflate(&plain, Compression::default(), FlushCompress::Sync);
        Page {
            plain: Bytes::from(plain),
            deflate: Bytes::from(deflate),
            crc,
            readiness: (0, 0),
        }
    }

    /// The page plus `tail` as one gzip member, in parts to send in order:
    /// header, cached deflate of the page, deflate of `tail`, trailer.
    pub fn gzip_with(&self, tail: &[u8]) -> [Bytes; 4] {
        const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let tail_deflate = deflate(tail, Compression::fast(), FlushCompress::Finish);
        let mut crc = self.crc.clone();
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(tail);
        crc.combine(&tail_crc);
        let size = (self.plain.len() + tail.len()) as u32;
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&crc.finalize().to_le_bytes());
        trailer.extend_from_slice(&size.to_le_bytes());
        [
            Bytes::from_static(&HEADER),
            self.deflate.clone(),
            Bytes::from(tail_deflate),
            Bytes::from(trailer),
        ]
    }
}

/// Raw deflate of `input`, ending with `flush` (Sync: byte-aligned and
/// open for more blocks; Finish: a final block).
fn deflate(input: &[u8], level: Compression, flush: FlushCompress) -> Vec<u8> {
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(input.len() / 8 + 64);
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .expect("in-memory deflate of a complete buffer cannot fail");
        let done_in = c.total_in() as usize == input.len();
        let has_room = out.len() < out.capacity();
        match (status, flush) {
            (Status::StreamEnd, _) => return out,
            (_, FlushCompress::Sync) if done_in && has_room => return out,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(parts: &[Bytes]) -> Vec<u8> {
        let joined: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&joined[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn gzip_of_page_and_tail_is_one_valid_member() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("dbss_up{{project_id=\"p{i}\"}} 1\n").into_bytes())
            .collect();
        let page = Page::from_plain(text.clone());
        let tail = b"dbss_exporter_scrapes_total 7\n";
        let out = gunzip(&page.gzip_with(tail));
        let mut want = text;
        want.extend_from_slice(tail);
        assert_eq!(out, want);
        assert!(page.deflate.len() < page.plain.len() / 10);
    }

    /// The page that completes the first cycle is published at once, not
    /// after the gap that follows the previous publish.
    #[tokio::test]
    async fn the_first_complete_page_skips_the_publish_gap() {
        let snapshot = Snapshot::new(Duration::from_secs(30));
        let keys: Vec<TargetKey> = ["a", "b"]
            .iter()
            .map(|p| (p.to_string(), "http://sim".to_string()))
            .collect();
        snapshot.set_targets(&keys);
        let cancel = CancellationToken::new();
        tokio::spawn(snapshot.clone().run_publisher(cancel.clone()));
        let state = |p: &str| {
            let target = crate::config::Target {
                project_id: p.into(),
                region: "cn-north-4".into(),
                endpoint: "http://sim".into(),
                credentials: None,
                labels: Vec::new(),
                ca_file: None,
                insecure_skip_verify: false,
            };
            Arc::new(ProjectState::new(&target))
        };

        let published = |want: (usize, usize)| {
            let snapshot = snapshot.clone();
            async move {
                while snapshot.page().readiness != want {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        // The first change is published at once; the 30 s gap starts then.
        snapshot.update(&keys[0], state("a"), true);
        let first = tokio::time::timeout(Duration::from_secs(5), published((2, 1))).await;
        assert!(first.is_ok(), "the first change was not published");
        snapshot.update(&keys[1], state("b"), true);
        let waited = tokio::time::timeout(Duration::from_secs(5), published((2, 2))).await;
        cancel.cancel();
        assert!(waited.is_ok(), "the complete page waited out the gap");
    }

    #[test]
    fn gzip_of_an_empty_page_holds_just_the_tail() {
        let page = Page::from_plain(Vec::new());
        assert_eq!(gunzip(&page.gzip_with(b"x 1\n")), b"x 1\n");
    }
}
