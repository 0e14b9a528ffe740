//! Figures of the `rsp` process itself, read from `/proc/self` when
//! `/metrics` is scraped (a [`Collector`], so nothing polls between
//! scrapes): resident memory and open file descriptors. Where `/proc` is
//! missing (not Linux) the gauges read 0.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, Registry};

struct ProcessCollector {
    resident: IntGauge,
    open_fds: IntGauge,
}

/// Register the process gauges in `registry`.
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    let collector = ProcessCollector {
        resident: IntGauge::new(
            "rsp_process_resident_memory_bytes",
            "Resident set size of the rsp process (VmRSS of /proc/self/status)",
        )?,
        open_fds: IntGauge::new(
            "rsp_process_open_fds",
            "File descriptors the rsp process has open (entries of /proc/self/fd)",
        )?,
    };
    registry.register(Box::new(collector))
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.resident.desc();
        descs.extend(self.open_fds.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| resident_bytes(&s))
            .unwrap_or(0);
        self.resident.set(rss.min(i64::MAX as u64) as i64);
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        self.open_fds.set(fds as i64);
        let mut families = self.resident.collect();
        families.extend(self.open_fds.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_vmrss_in_kib() {
        let status = "Name:\trsp\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t4\n";
        assert_eq!(resident_bytes(status), Some(2048 * 1024));
        assert_eq!(resident_bytes("Name:\trsp\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_scrape_reports_this_process_memory_and_descriptors() {
        let registry = Registry::new();
        register(&registry).expect("registers");
        let families = registry.gather();
        let value = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map(|f| f.get_metric()[0].get_gauge().get_value())
                .expect(name)
        };
        assert!(value("rsp_process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("rsp_process_open_fds") >= 3.0);
    }
}
