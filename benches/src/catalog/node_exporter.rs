//! The node-exporter-shaped series set of one host (see the parent module).

use super::{Builder, Host, MetricType, Profile};
use crate::model::{HistPart, Model, latency_cdf};
use crate::rng::{SplitMix64, hash};

const CPU_MODES: [(&str, f64, f64, f64); 8] = [
    // mode, ticks/s at idle, extra ticks/s at full load, relative noise
    ("idle", 99.5, -97.0, 0.02),
    ("user", 0.2, 65.0, 0.15),
    ("system", 0.2, 20.0, 0.2),
    ("iowait", 0.05, 4.0, 0.6),
    ("irq", 0.0, 1.0, 0.5),
    ("softirq", 0.03, 4.0, 0.3),
    ("nice", 0.0, 0.5, 0.5),
    ("steal", 0.0, 1.5, 0.5),
];

const MEMINFO: [(&str, f64, f64, f64); 22] = [
    // field, low and high share of MemTotal, step as a share of MemTotal
    ("MemFree", 0.05, 0.40, 0.0005),
    ("MemAvailable", 0.30, 0.80, 0.0005),
    ("Buffers", 0.01, 0.03, 0.00002),
    ("Cached", 0.20, 0.50, 0.0003),
    ("SwapCached", 0.0, 0.0001, 0.0),
    ("Active", 0.20, 0.40, 0.0002),
    ("Inactive", 0.10, 0.30, 0.0002),
    ("Active_anon", 0.05, 0.20, 0.0002),
    ("Inactive_anon", 0.01, 0.05, 0.00005),
    ("Active_file", 0.10, 0.25, 0.0002),
    ("Inactive_file", 0.10, 0.25, 0.0002),
    ("Dirty", 0.0, 0.002, 0.0002),
    ("Writeback", 0.0, 0.00001, 0.0),
    ("AnonPages", 0.05, 0.20, 0.0002),
    ("Mapped", 0.01, 0.03, 0.00002),
    ("Shmem", 0.001, 0.01, 0.00001),
    ("Slab", 0.02, 0.05, 0.00002),
    ("SReclaimable", 0.01, 0.03, 0.00002),
    ("SUnreclaim", 0.005, 0.02, 0.00001),
    ("KernelStack", 0.0005, 0.001, 0.000001),
    ("PageTables", 0.001, 0.005, 0.000005),
    ("Committed_AS", 0.20, 0.60, 0.0003),
];

const COLLECTORS: [&str; 30] = [
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "edac",
    "entropy",
    "filefd",
    "filesystem",
    "hwmon",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "os",
    "pressure",
    "rapl",
    "schedstat",
    "sockstat",
    "stat",
    "time",
    "uname",
    "vmstat",
];

const LE: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, f64::INFINITY];

/// Builds host number `host` (1-based) of a fleet. `start_s` is the first scrape (for boot
/// times); `interval_s` the scrape interval; `width` the zero-padded width of the host number.
pub fn host(seed: u64, host: u64, width: usize, start_s: i64, interval_s: f64) -> Host {
    let mut hr = SplitMix64::new(hash(&[seed, host, 0]));
    let ncpu: u64 = *hr.pick(&[4, 8, 8, 16]);
    let mem_kb = ncpu * 4 * 1024 * 1024 - hr.below(200_000) - 100_000;
    let uptime_s = 86_400 * (1 + hr.below(90)) + hr.below(86_400);
    let boot_s = (start_s.max(0) as u64).saturating_sub(uptime_s);
    let cloud = hr.chance(0.5);
    let nvme = hr.chance(0.5);
    let docker = hr.chance(0.5);
    let profile = Profile {
        base: hr.range(0.05, 0.55),
        amp: hr.range(0.03, 0.2),
        phase: hr.range(0.0, std::f64::consts::TAU),
        burst_key: hash(&[seed, host, u64::MAX]),
    };
    let mut b = Builder {
        host_labels: format!("instance=\"host-{host:0width$}:9100\",job=\"node\""),
        seed,
        host,
        ordinal: 0,
        families: Vec::new(),
    };
    let up = uptime_s as f64;

    b.family("node_cpu_seconds", MetricType::Counter);
    for cpu in 0..ncpu {
        let cpu = cpu.to_string();
        for (mode, base, per_util, noise) in CPU_MODES {
            let (base, per_util, p) = match mode {
                "steal" if !cloud => (0.0, 0.0, 0.0),
                "nice" => (base, per_util, 0.1),
                "irq" => (base, per_util, 0.6),
                _ => (base, per_util, 1.0),
            };
            let start = (up * (base + 0.3 * per_util).max(0.0)) as u64;
            b.counter(&[("cpu", &cpu), ("mode", mode)], 2, start, base, per_util, noise, p, 1);
        }
    }
    b.family("node_cpu_guest_seconds", MetricType::Counter);
    for cpu in 0..ncpu {
        for mode in ["user", "nice"] {
            b.constant("", &[("cpu", &cpu.to_string()), ("mode", mode)], 2, 0);
        }
    }
    b.family("node_cpu_scaling_frequency_hertz", MetricType::Gauge);
    for cpu in 0..ncpu {
        // kHz from sysfs, printed in Hz.
        b.walk(&[("cpu", &cpu.to_string())], 0, 1_200_000.0, 3_400_000.0, 300_000.0, 0.9, 1000);
    }

    let mem = mem_kb as f64;
    for (field, lo, hi, step) in MEMINFO {
        b.family(format!("node_memory_{field}_bytes"), MetricType::Gauge);
        let p = if step == 0.0 { 0.05 } else { 1.0 };
        b.walk(&[], 0, mem * lo, mem * hi, (mem * step).max(1.0), p, 1024);
    }
    b.family("node_memory_MemTotal_bytes", MetricType::Gauge);
    b.constant("", &[], 0, mem_kb * 1024);
    b.family("node_memory_SwapTotal_bytes", MetricType::Gauge);
    let swap = if cloud { 0 } else { 2 * 1024 * 1024 * 1024 };
    b.constant("", &[], 0, swap);
    b.family("node_memory_SwapFree_bytes", MetricType::Gauge);
    b.constant("", &[], 0, swap.saturating_sub(hr.below(1000) * 4096).min(swap));
    b.family("node_memory_HugePages_Total", MetricType::Gauge);
    b.constant("", &[], 0, 0);
    b.family("node_memory_Hugepagesize_bytes", MetricType::Gauge);
    b.constant("", &[], 0, 2048 * 1024);

    let root_dev = if nvme { "/dev/nvme0n1p1" } else { "/dev/sda1" };
    let efi_dev = if nvme { "/dev/nvme0n1p15" } else { "/dev/sda15" };
    let mut mounts: Vec<(&str, &str, &str, u64, f64)> = vec![
        // device, mountpoint, fstype, size in 4 KiB blocks, churn
        (root_dev, "/", "ext4", 25_000_000 + hr.below(25_000_000), 1.0),
        (efi_dev, "/boot/efi", "vfat", 26_000, 0.0),
        ("tmpfs", "/run", "tmpfs", mem_kb / 40, 0.05),
        ("tmpfs", "/run/lock", "tmpfs", 1280, 0.0),
    ];
    if docker {
        mounts.push(("/dev/sdb1", "/var/lib/docker", "xfs", 50_000_000 + hr.below(50_000_000), 3.0));
    }
    let fs_families: [(&'static str, u8); 7] = [
        ("node_filesystem_size_bytes", 0),
        ("node_filesystem_avail_bytes", 1),
        ("node_filesystem_free_bytes", 2),
        ("node_filesystem_files", 3),
        ("node_filesystem_files_free", 4),
        ("node_filesystem_readonly", 5),
        ("node_filesystem_device_error", 6),
    ];
    for (name, which) in fs_families {
        b.family(name, MetricType::Gauge);
        for &(device, mountpoint, fstype, blocks, churn) in &mounts {
            let labels = [("device", device), ("fstype", fstype), ("mountpoint", mountpoint)];
            let blocks_f = blocks as f64;
            let p = (0.6 * churn).min(1.0);
            match which {
                0 => b.constant("", &labels, 0, blocks * 4096),
                1 => b.walk(&labels, 0, blocks_f * 0.2, blocks_f * 0.7, 30.0 * churn, p, 4096),
                2 => b.walk(&labels, 0, blocks_f * 0.25, blocks_f * 0.75, 30.0 * churn, p, 4096),
                3 => b.constant("", &labels, 0, blocks / 4),
                4 => b.walk(&labels, 0, blocks_f / 6.0, blocks_f / 5.0, 3.0 * churn, p / 2.0, 1),
                _ => b.constant("", &labels, 0, 0),
            }
        }
    }

    let mut nics = vec![("eth0", 1.0), ("lo", 0.05)];
    if docker {
        nics.push(("docker0", 0.2));
    }
    let net: [(&'static str, f64, bool); 8] = [
        // family, bytes-per-unit divisor, error-like
        ("node_network_receive_bytes", 1.0, false),
        ("node_network_transmit_bytes", 1.0, false),
        ("node_network_receive_packets", 900.0, false),
        ("node_network_transmit_packets", 700.0, false),
        ("node_network_receive_errs", 0.0, true),
        ("node_network_transmit_errs", 0.0, true),
        ("node_network_receive_drop", 0.0, true),
        ("node_network_transmit_drop", 0.0, true),
    ];
    for (name, div, errs) in net {
        b.family(name, MetricType::Counter);
        for &(dev, scale) in &nics {
            let labels = [("device", dev)];
            if errs {
                let p = if dev == "eth0" { 0.01 } else { 0.0 };
                b.counter(&labels, 0, 100, 0.1, 0.0, 0.5, p, 1);
            } else {
                let bytes_rate = 50_000.0 * scale;
                let per_util = 3_000_000.0 * scale;
                let start = (up * (bytes_rate + per_util * 0.3) / div) as u64;
                b.counter(&labels, 0, start, bytes_rate / div, per_util / div, 0.3, 1.0, 1);
            }
        }
    }
    for (name, v) in [("node_network_up", 1), ("node_network_mtu_bytes", 1500)] {
        b.family(name, MetricType::Gauge);
        for &(dev, _) in &nics {
            let v = if dev == "lo" && v == 1500 { 65536 } else { v };
            b.constant("", &[("device", dev)], 0, v);
        }
    }

    let mut disks = vec![if nvme { "nvme0n1" } else { "sda" }];
    if docker {
        disks.push("sdb");
    }
    let disk: [(&'static str, u8, f64, f64, u64); 8] = [
        // family, decimals, base/s, per_util/s, quantum
        ("node_disk_reads_completed", 0, 0.5, 150.0, 1),
        ("node_disk_writes_completed", 0, 4.0, 300.0, 1),
        ("node_disk_read_bytes", 0, 8.0, 20_000.0, 512),
        ("node_disk_written_bytes", 0, 60.0, 40_000.0, 512),
        ("node_disk_io_time_seconds", 3, 3.0, 400.0, 1),
        ("node_disk_read_time_seconds", 3, 0.2, 100.0, 1),
        ("node_disk_write_time_seconds", 3, 2.0, 500.0, 1),
        ("node_disk_io_time_weighted_seconds", 3, 2.5, 700.0, 1),
    ];
    for (name, decimals, base, per_util, quantum) in disk {
        b.family(name, MetricType::Counter);
        for dev in &disks {
            let start = (up * (base + 0.3 * per_util)) as u64;
            b.counter(&[("device", dev)], decimals, start, base, per_util, 0.4, 1.0, quantum);
        }
    }
    b.family("node_disk_io_now", MetricType::Gauge);
    for dev in &disks {
        b.walk(&[("device", dev)], 0, 0.0, 4.0, 1.0, 0.2, 1);
    }

    for (name, alpha, noise) in
        [("node_load1", 0.22, 0.3), ("node_load5", 0.05, 0.1), ("node_load15", 0.017, 0.05)]
    {
        b.family(name, MetricType::Gauge);
        let rng = b.rng();
        let scale = ncpu as f64 * 100.0;
        let model = Model::Smooth { x: scale * profile.base, scale, alpha, noise };
        b.add("", &[], 2, model, rng);
    }

    b.family("node_boot_time_seconds", MetricType::Gauge);
    b.constant("", &[], 0, boot_s);
    b.family("node_time_seconds", MetricType::Gauge);
    let rng = b.rng();
    b.add("", &[], 6, Model::Clock, rng);
    let cs = ncpu as f64 / 8.0;
    for (name, base, per_util) in [
        ("node_context_switches", 2_000.0 * cs, 60_000.0 * cs),
        ("node_intr", 1_500.0 * cs, 40_000.0 * cs),
        ("node_forks", 3.0, 60.0),
    ] {
        b.family(name, MetricType::Counter);
        b.counter(&[], 0, (up * (base + 0.3 * per_util)) as u64, base, per_util, 0.15, 1.0, 1);
    }
    let misc_walks: [(&'static str, f64, f64, f64, f64); 8] = [
        ("node_procs_running", 1.0, ncpu as f64, 1.0, 0.6),
        ("node_procs_blocked", 0.0, 2.0, 1.0, 0.1),
        ("node_filefd_allocated", 1_000.0, 6_000.0, 15.0, 0.8),
        ("node_sockstat_sockets_used", 200.0, 900.0, 5.0, 0.8),
        ("node_sockstat_TCP_inuse", 10.0, 300.0, 3.0, 0.7),
        ("node_sockstat_TCP_tw", 0.0, 200.0, 5.0, 0.8),
        ("node_nf_conntrack_entries", 50.0, 3_000.0, 20.0, 0.9),
        ("node_processes_threads", 200.0, 1_500.0, 4.0, 0.7),
    ];
    for (name, lo, hi, step, p) in misc_walks {
        b.family(name, MetricType::Gauge);
        b.walk(&[], 0, lo, hi, step, p, 1);
    }
    let consts: [(&'static str, u64); 4] = [
        ("node_entropy_available_bits", 256),
        ("node_filefd_maximum", 9_223_372_036_854_775_807),
        ("node_nf_conntrack_entries_limit", 262_144),
        ("node_timex_sync_status", 1),
    ];
    for (name, v) in consts {
        b.family(name, MetricType::Gauge);
        b.constant("", &[], 0, v);
    }
    b.family("node_timex_offset_seconds", MetricType::Gauge);
    b.jitter("", &[], 0, 900_000, 0.05);
    b.family("node_uname_info", MetricType::Gauge);
    let nodename = format!("host-{host:0width$}");
    let machine = if hr.chance(0.8) { "x86_64" } else { "aarch64" };
    b.constant(
        "",
        &[
            ("domainname", "(none)"),
            ("machine", machine),
            ("nodename", &nodename),
            ("release", "6.1.0-13-amd64"),
            ("sysname", "Linux"),
        ],
        0,
        1,
    );
    b.family("node_os_info", MetricType::Gauge);
    b.constant("", &[("id", "debian"), ("name", "Debian GNU/Linux"), ("version_id", "12")], 0, 1);
    b.family("node_exporter_build_info", MetricType::Gauge);
    b.constant("", &[("goversion", "go1.21.4"), ("version", "1.7.0")], 0, 1);

    let vm: [(&'static str, f64, f64, f64); 7] = [
        ("node_vmstat_pgfault", 3_000.0, 80_000.0, 1.0),
        ("node_vmstat_pgmajfault", 0.1, 5.0, 0.3),
        ("node_vmstat_pgpgin", 4.0, 10_000.0, 1.0),
        ("node_vmstat_pgpgout", 30.0, 20_000.0, 1.0),
        ("node_vmstat_pswpin", 0.0, 0.0, 0.0),
        ("node_vmstat_pswpout", 0.0, 0.0, 0.0),
        ("node_vmstat_oom_kill", 0.1, 0.0, 0.0001),
    ];
    let netstat: [(&'static str, f64, f64, f64); 10] = [
        ("node_netstat_Tcp_ActiveOpens", 0.5, 30.0, 1.0),
        ("node_netstat_Tcp_PassiveOpens", 0.3, 60.0, 1.0),
        ("node_netstat_Tcp_InSegs", 50.0, 5_000.0, 1.0),
        ("node_netstat_Tcp_OutSegs", 50.0, 4_500.0, 1.0),
        ("node_netstat_Tcp_RetransSegs", 0.05, 3.0, 0.5),
        ("node_netstat_Udp_InDatagrams", 2.0, 50.0, 1.0),
        ("node_netstat_Udp_OutDatagrams", 2.0, 50.0, 1.0),
        ("node_netstat_Udp_InErrors", 0.0, 0.0, 0.0),
        ("node_netstat_TcpExt_ListenDrops", 0.1, 0.0, 0.002),
        ("node_netstat_TcpExt_SyncookiesSent", 0.1, 0.0, 0.001),
    ];
    for (name, base, per_util, p) in vm.into_iter().chain(netstat) {
        b.family(name, MetricType::Unknown);
        b.counter(&[], 0, (up * (base + 0.3 * per_util)) as u64, base, per_util, 0.2, p, 1);
    }
    b.family("node_netstat_Tcp_CurrEstab", MetricType::Unknown);
    b.walk(&[], 0, 5.0, 200.0, 2.0, 0.7, 1);

    b.family("node_scrape_collector_duration_seconds", MetricType::Gauge);
    for c in COLLECTORS {
        let hi = 20_000 + hr.below(3_000_000);
        b.jitter("", &[("collector", c)], 10_000, hi, 1.0);
    }
    b.family("node_scrape_collector_success", MetricType::Gauge);
    for c in COLLECTORS {
        b.constant("", &[("collector", c)], 0, 1);
    }

    b.family("go_gc_duration_seconds", MetricType::Summary);
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        let lo = 20_000 + 20_000 * q.len() as u64;
        b.jitter("", &[("quantile", q)], lo, lo * 4, 0.15);
    }
    let mut rng = b.rng();
    let model = Model::counter(&mut rng, 5_000_000_000, 15_000.0, 0.0);
    b.add("_sum", &[], 9, model, rng);
    let mut rng = b.rng();
    let mut model = Model::counter(&mut rng, 5_000, 1.0 / interval_s, 0.0);
    if let Model::Counter { noise, p_active, .. } = &mut model {
        *noise = 0.0;
        *p_active = 0.15;
    }
    b.add("_count", &[], 0, model, rng);
    let go: [(&'static str, f64, f64, f64, f64, u64); 8] = [
        // family, lo, hi, step (units), p_move, quantum
        ("go_goroutines", 7.0, 12.0, 1.0, 0.1, 1),
        ("go_threads", 8.0, 14.0, 1.0, 0.01, 1),
        ("go_memstats_alloc_bytes", 250_000.0, 1_200_000.0, 80_000.0, 1.0, 8),
        ("go_memstats_heap_inuse_bytes", 300.0, 1_100.0, 40.0, 0.9, 8192),
        ("go_memstats_sys_bytes", 200.0, 400.0, 2.0, 0.01, 65536),
        ("go_memstats_next_gc_bytes", 500_000.0, 1_000_000.0, 50_000.0, 0.15, 8),
        ("process_resident_memory_bytes", 4_000.0, 9_000.0, 40.0, 0.6, 4096),
        ("process_open_fds", 8.0, 14.0, 1.0, 0.1, 1),
    ];
    for (name, lo, hi, step, p, q) in go {
        b.family(name, MetricType::Gauge);
        b.walk(&[], 0, lo, hi, step, p, q);
    }
    for (name, base) in
        [("go_gc_heap_allocs_bytes", 60_000.0), ("go_memstats_mallocs", 600.0), ("go_memstats_frees", 590.0)]
    {
        b.family(name, MetricType::Counter);
        b.counter(&[], 0, (up * base) as u64, base, base, 0.2, 1.0, 1);
    }
    b.family("process_cpu_seconds", MetricType::Counter);
    b.counter(&[], 2, (up * 2.0) as u64, 0.5, 4.0, 0.3, 1.0, 1);
    b.family("process_start_time_seconds", MetricType::Gauge);
    b.constant("", &[], 2, (boot_s + 40) * 100 + hr.below(100));
    b.family("process_max_fds", MetricType::Gauge);
    b.constant("", &[], 0, 1_048_576);
    b.family("process_virtual_memory_bytes", MetricType::Gauge);
    b.walk(&[], 0, 180_000.0, 190_000.0, 10.0, 0.02, 4096);
    b.family("go_info", MetricType::Gauge);
    b.constant("", &[("version", "go1.21.4")], 0, 1);
    b.family("promhttp_metric_handler_requests", MetricType::Counter);
    let scrapes = uptime_s as f64 / interval_s;
    let mut rng = b.rng();
    let mut model = Model::counter(&mut rng, 1, 1.0 / interval_s, 0.0);
    if let Model::Counter { acc, noise, .. } = &mut model {
        *acc = scrapes as u64;
        *noise = 0.0;
    }
    b.add("", &[("code", "200")], 0, model, rng);
    b.constant("", &[("code", "500")], 0, 0);
    b.constant("", &[("code", "503")], 0, 0);
    b.family("promhttp_metric_handler_requests_in_flight", MetricType::Gauge);
    b.constant("", &[], 0, 1);

    b.family("http_request_duration_seconds", MetricType::Histogram);
    let handlers = [
        // handler, method, requests/s at full load, median latency (s), shape
        ("/api/v1/query", "GET", 4.0, 0.04, 1.6),
        ("/api/v1/push", "POST", 60.0, 0.006, 2.5),
        ("/healthz", "GET", 0.5, 0.0008, 3.0),
    ];
    for (i, (handler, method, rate, median, shape)) in handlers.into_iter().enumerate() {
        let key = hash(&[seed, host, u64::MAX - 1 - i as u64]);
        let labels = [("handler", handler), ("method", method)];
        for le in LE {
            let le_s = if le.is_infinite() { "+Inf".to_string() } else { le.to_string() };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le_s));
            let part = HistPart::Bucket(latency_cdf(le, median, shape));
            let rng = b.rng();
            b.add("_bucket", &with_le, 0, Model::Histogram { acc: 0, key, rate, part }, rng);
        }
        let mean_us = median * 1.3e6;
        let rng = b.rng();
        let sum = HistPart::Sum { mean_us };
        b.add("_sum", &labels, 6, Model::Histogram { acc: 0, key, rate, part: sum }, rng);
        let rng = b.rng();
        b.add("_count", &labels, 0, Model::Histogram { acc: 0, key, rate, part: HistPart::Count }, rng);
    }

    let total: u64 = b.families.iter().map(|f| f.series.len() as u64).sum::<u64>() + 5;
    b.family("up", MetricType::Gauge);
    b.constant("", &[], 0, 1);
    b.family("scrape_duration_seconds", MetricType::Gauge);
    b.jitter("", &[], 8_000_000, 60_000_000, 1.0);
    b.family("scrape_samples_scraped", MetricType::Gauge);
    b.constant("", &[], 0, total - 5);
    b.family("scrape_samples_post_metric_relabeling", MetricType::Gauge);
    b.constant("", &[], 0, total - 5);
    b.family("scrape_series_added", MetricType::Gauge);
    b.constant("", &[], 0, 0);

    Host { families: b.families, profile }
}
