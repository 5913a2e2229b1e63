//! A download's events drawn on a terminal.

use backbone::download::DownloadEvent;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr while a download runs, notes as lines: what
/// the binaries pass to `backbone::source::open` (the library prints
/// nothing).
pub fn reporter(prog: &'static str) -> impl FnMut(DownloadEvent) {
    let mut bar: Option<ProgressBar> = None;
    move |e| match e {
        DownloadEvent::Started { url, total } => {
            // Drawn only on a terminal; a failure's one line is the error.
            let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg}\n{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}")
                    .expect("valid template"),
            );
            b.set_message(format!("{prog}: downloading {url}"));
            bar = Some(b);
        }
        DownloadEvent::Progress { done } => {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        }
        DownloadEvent::Finished => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
        DownloadEvent::Note(n) => eprintln!("{prog}: {n}"),
    }
}
