//! Appends journal entries to a JSONL file, off the request path.

use super::Entry;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The background writer; `run` ends when every sender is dropped, after
/// writing and flushing everything it was sent.
pub struct FileWriter {
    rx: mpsc::UnboundedReceiver<Arc<Entry>>,
    file: tokio::io::BufWriter<tokio::fs::File>,
}

impl FileWriter {
    /// Open `path` for appending; returns the writer and the sender the
    /// journal feeds.
    pub async fn open(path: &Path) -> std::io::Result<(FileWriter, mpsc::UnboundedSender<Arc<Entry>>)> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            FileWriter {
                rx,
                file: tokio::io::BufWriter::new(file),
            },
            tx,
        ))
    }

    /// Write entries as they come; flush whenever the queue runs dry.
    pub async fn run(mut self) {
        while let Some(entry) = self.rx.recv().await {
            self.write(&entry).await;
            while let Ok(entry) = self.rx.try_recv() {
                self.write(&entry).await;
            }
            if let Err(e) = self.file.flush().await {
                tracing::error!(cause = %e, "journal file flush failed");
            }
        }
    }

    async fn write(&mut self, entry: &Entry) {
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        if let Err(e) = self.file.write_all(&line).await {
            tracing::error!(cause = %e, "journal file write failed");
        }
    }
}
