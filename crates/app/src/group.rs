//! Group commit: many requests' items go to one task that writes whatever has queued in one
//! transaction and answers each request with its own items' results once they are durable. The
//! access log's writer and the detectors' counts both go through one of these: a commit costs
//! about the same for one item as for hundreds.

use std::future::Future;
use tokio::sync::{mpsc, oneshot};

type Batch<I, O> = (Vec<I>, oneshot::Sender<Result<Vec<O>, String>>);

/// A group-commit writer's front door.
#[derive(Debug)]
pub(crate) struct Group<I, O> {
    tx: mpsc::Sender<Batch<I, O>>,
}

impl<I, O> Clone for Group<I, O> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<I: Send + 'static, O: Send + 'static> Group<I, O> {
    /// Starts the writer: `flush` writes one transaction's items and returns one result per
    /// item, in order (or why none was written); at most `max` items go in one transaction.
    pub(crate) fn start<F, Fut>(max: usize, flush: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, String>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Batch<I, O>>(65_536);
        tokio::spawn(writer(rx, max, flush));
        Self { tx }
    }

    /// Returns the results of `items` once they are durable.
    ///
    /// # Errors
    /// Why they could not be written (or that the writer has stopped).
    pub(crate) async fn submit(&self, items: Vec<I>) -> Result<Vec<O>, String> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (ack, done) = oneshot::channel();
        self.tx.send((items, ack)).await.map_err(|_| "the writer has stopped".to_owned())?;
        done.await.map_err(|_| "the writer has stopped".to_owned())?
    }
}

async fn writer<I, O, F, Fut>(mut rx: mpsc::Receiver<Batch<I, O>>, max: usize, flush: F)
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, String>>,
{
    while let Some(first) = rx.recv().await {
        let mut count = first.0.len();
        let mut batch = vec![first];
        // Gather what is queued; then let the requests just woken by the last commit run and
        // queue theirs, for as long as the batch keeps growing.
        loop {
            let before = count;
            while count < max {
                match rx.try_recv() {
                    Ok(b) => {
                        count += b.0.len();
                        batch.push(b);
                    }
                    Err(_) => break,
                }
            }
            if count >= max || (count == before && batch.len() > 1) {
                break;
            }
            if count == before {
                // A lone request: give the others one chance to join, then go.
                tokio::task::yield_now().await;
                if rx.is_empty() {
                    break;
                }
                continue;
            }
            tokio::task::yield_now().await;
        }
        let mut items: Vec<I> = Vec::with_capacity(count);
        let mut acks = Vec::with_capacity(batch.len());
        for (i, ack) in batch {
            acks.push((i.len(), ack));
            items.extend(i);
        }
        match flush(items).await {
            Ok(results) => {
                let mut results = results.into_iter();
                for (n, ack) in acks {
                    let _ = ack.send(Ok(results.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                for (_, ack) in acks {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_request_gets_its_own_results_and_batches_are_shared() {
        let batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = batches.clone();
        let g: Group<i64, i64> = Group::start(100, move |items: Vec<i64>| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(items.iter().map(|i| i * 10).collect()) }
        });
        let mut tasks = Vec::new();
        for n in 0..50_i64 {
            let g = g.clone();
            tasks.push(tokio::spawn(async move { g.submit(vec![n, n + 1000]).await }));
        }
        for (n, t) in (0..50_i64).zip(tasks) {
            assert_eq!(t.await.ok().and_then(Result::ok), Some(vec![n * 10, (n + 1000) * 10]));
        }
        assert!(batches.load(std::sync::atomic::Ordering::SeqCst) <= 50);
        assert_eq!(g.submit(Vec::new()).await, Ok(Vec::new()));
        let failing: Group<i64, i64> = Group::start(10, |_| async { Err("disk full".to_owned()) });
        assert_eq!(failing.submit(vec![1]).await, Err("disk full".to_owned()));
    }
}
