//! Progress of a long command: a bar with rows and rate on a terminal (`indicatif`), plain
//! lines when stderr is not a terminal (CI logs, pipes), nothing in tests.

use std::io::IsTerminal;
use std::time::Instant;

/// Where a command reports how far it got.
pub trait Progress: Send {
    fn start(&mut self, what: &str, total: u64);
    fn advance(&mut self, n: u64);
    fn finish(&mut self);
}

/// Reports nothing (tests, `--quiet`).
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// A bar on a terminal, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar(None))
    } else {
        Box::new(Lines::default())
    }
}

struct Bar(Option<indicatif::ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, what: &str, total: u64) {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {pos}/{len} rows, {per_sec}, {eta} left",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        self.0 = Some(bar);
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish();
        }
    }
}

/// One line per tenth of the work, with the rate so far.
#[derive(Default)]
struct Lines {
    what: String,
    total: u64,
    done: u64,
    next_report: u64,
    started: Option<Instant>,
}

impl Lines {
    fn line(&self) {
        let secs = self
            .started
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
            .max(0.001);
        eprintln!(
            "{}: {}/{} rows ({:.0} rows/s)",
            self.what,
            self.done,
            self.total,
            self.done as f64 / secs
        );
    }
}

impl Progress for Lines {
    fn start(&mut self, what: &str, total: u64) {
        *self = Self {
            what: what.to_owned(),
            total,
            done: 0,
            next_report: (total / 10).max(1),
            started: Some(Instant::now()),
        };
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.done >= self.next_report && self.done < self.total {
            self.line();
            self.next_report = self.done + (self.total / 10).max(1);
        }
    }

    fn finish(&mut self) {
        if self.started.is_some() {
            self.line();
        }
    }
}
