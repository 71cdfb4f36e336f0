//! Progress of a running sync: a bar per entity on a terminal, log lines otherwise.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use skysync_core::sync::{Entity, RunMode};

use super::report::EntityReport;
pub use skysync_core::sync::Phase;

/// Receives progress events from the engine (from several entities at once).
pub trait Progress: Send + Sync {
    /// An entity starts.
    fn started(&self, entity: &Entity, mode: RunMode);
    /// A page was committed: `records` and `pages` so far in this phase, `expected` records from
    /// the list's `count`, when known.
    fn page(&self, entity: &Entity, phase: Phase, records: u64, pages: u64, expected: Option<u64>);
    /// An entity ended.
    fn finished(&self, entity: &Entity, report: &EntityReport);
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: &Entity, _: RunMode) {}
    fn page(&self, _: &Entity, _: Phase, _: u64, _: u64, _: Option<u64>) {}
    fn finished(&self, _: &Entity, _: &EntityReport) {}
}

/// One `tracing` line per page, for logs and cron mail.
#[derive(Debug, Default)]
pub struct LogLines;

impl Progress for LogLines {
    fn started(&self, entity: &Entity, mode: RunMode) {
        tracing::info!(entity = entity.name, mode = mode.label(), "sync started");
    }

    fn page(&self, entity: &Entity, phase: Phase, records: u64, pages: u64, expected: Option<u64>) {
        match expected {
            Some(total) => tracing::info!(
                entity = entity.name,
                phase = phase.label(),
                pages,
                records,
                expected = total,
                "page committed"
            ),
            None => tracing::info!(entity = entity.name, phase = phase.label(), pages, records, "page committed"),
        }
    }

    fn finished(&self, entity: &Entity, r: &EntityReport) {
        match &r.error {
            None => tracing::info!(
                entity = entity.name,
                added = r.added,
                changed = r.changed,
                removed = r.removed,
                pages = r.pages,
                "sync finished"
            ),
            // The summary reports failures; a warning per entity would repeat a run-wide stop N times.
            Some(e) => tracing::info!(entity = entity.name, pages = r.pages, error = %e, "sync stopped"),
        }
    }
}

/// A bar per entity on stderr: records, pages, rate and ETA (from the list's `count`).
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<&'static str, ProgressBar>>,
    style: ProgressStyle,
}

impl std::fmt::Debug for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bars").finish_non_exhaustive()
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Bars {
    /// Bars drawn on stderr.
    pub fn new() -> Self {
        // indicatif's own `{per_sec}` prints every digit of the float ("4,742.480357629941/s").
        let style = ProgressStyle::with_template(
            "{prefix:>18} [{bar:28}] {human_pos:>9}/{human_len:9} {msg} {rate:>10} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&records_per_sec(state.per_sec()));
        })
        .progress_chars("=> ");
        Self { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Mutex::default(), style }
    }

    fn bar(&self, entity: &'static str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(entity)
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::no_length());
                bar.set_style(self.style.clone());
                bar.set_prefix(entity);
                bar
            })
            .clone()
    }
}

/// The bars are wiped when the run ends (the summary says the rest), so the summary and any
/// error start on a clean line.
impl Drop for Bars {
    fn drop(&mut self) {
        let _ = self.multi.clear();
    }
}

/// "1,234 rec/s": whole records, since a page lands thousands at a time.
fn records_per_sec(rate: f64) -> String {
    if !rate.is_finite() || rate < 0.0 {
        return "-".into();
    }
    format!("{} rec/s", indicatif::HumanCount(rate.round() as u64))
}

impl Progress for Bars {
    fn started(&self, entity: &Entity, mode: RunMode) {
        self.bar(entity.name).set_message(mode.label());
    }

    fn page(&self, entity: &Entity, phase: Phase, records: u64, pages: u64, expected: Option<u64>) {
        let bar = self.bar(entity.name);
        if let Some(total) = expected {
            bar.set_length(total.max(records));
        }
        bar.set_position(records);
        bar.set_message(format!("{} · {pages} pages", phase.label()));
    }

    fn finished(&self, entity: &Entity, r: &EntityReport) {
        let bar = self.bar(entity.name);
        bar.set_length(r.records.max(bar.position()));
        match &r.error {
            None => bar.finish_with_message(format!("done · {} pages", r.pages)),
            Some(_) => bar.abandon_with_message(format!("stopped · {} pages", r.pages)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::records_per_sec;

    #[test]
    fn rates_are_whole_records_per_second() {
        assert_eq!(records_per_sec(4742.480357629941), "4,742 rec/s");
        assert_eq!(records_per_sec(0.4), "0 rec/s");
        assert_eq!(records_per_sec(f64::NAN), "-");
    }
}
