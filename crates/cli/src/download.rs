//! A download's events drawn on a terminal.

use backbone::download::Event;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr while a download runs, notes as lines: what
/// the binaries pass to `backbone::source::open` (the library prints
/// nothing).
pub fn reporter(prog: &'static str) -> impl FnMut(Event) {
    let mut bar: Option<ProgressBar> = None;
    move |e| match e {
        Event::Started { url, total } => {
            // Drawn only on a terminal; a failure's one line is the error.
            let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg}\n{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}")
                    .expect("valid template"),
            );
            b.set_message(format!("{prog}: downloading {url}"));
            bar = Some(b);
        }
        Event::Progress { done } => {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        }
        Event::Finished => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
        Event::Note(n) => eprintln!("{prog}: {n}"),
    }
}
