//! The report: `bench/results/latest.md` (one table per scenario, ratios, the peers beside their
//! reference figures, the targets) and `bench/results/chart.svg` (events/s and p99
//! time-to-first-event by server, log scale).

use std::fmt::Write as _;

use crate::stats::Spread;
use crate::suite::{Cell, Headline, Results, RunRecord, Scenario, ServerId};

/// A peer is flagged when its headline is more than this fraction below its reference figure.
pub const WEAK_PEER: f64 = 0.30;
/// A result above this fraction of the floor's is labelled client-bound.
pub const CLIENT_BOUND: f64 = 0.5;

/// Reference headline figures measured on this kind of machine (shared/reference/perf-peers.md
/// §3 and §6, medians of 3). Events/s for the std scenarios are requests/s × 204 events.
pub fn reference(server: ServerId, scenario: &str) -> Option<f64> {
    use ServerId::*;
    Some(match (server, scenario) {
        (PythonH11, "short") => 940.0,
        (PythonUvloop, "short") => 1175.0,
        (Node, "short") => 6565.0,
        (PythonH11, "std_c1") => 196.0 * 204.0,
        (PythonUvloop, "std_c1") => 253.0 * 204.0,
        (Node, "std_c1") => 1080.0 * 204.0,
        (PythonH11, "std_c50") => 31_000.0,
        (PythonUvloop, "std_c50") => 40_000.0,
        (Node, "std_c50") => 304_000.0,
        (PythonH11, "std_c500") => 156.0 * 204.0,
        (PythonUvloop, "std_c500") => 195.0 * 204.0,
        (Node, "std_c500") => 1451.0 * 204.0,
        (PythonH11, "long") => 47_900.0,
        (PythonUvloop, "long") => 70_700.0,
        (Node, "long") => 412_000.0,
        (Ag2, "agent_c1") => 1458.0,
        (Ag2, "agent_c50") => 1672.0,
        _ => return None,
    })
}

fn spread(cell: &Cell, f: impl Fn(&RunRecord) -> f64) -> Spread {
    Spread::of(cell.runs.iter().map(f))
}

/// The headline figure of one run.
pub fn headline(scenario: &Scenario, run: &RunRecord) -> f64 {
    let s = &run.summary;
    match scenario.headline {
        Headline::RequestsPerSecond | Headline::RejectsPerSecond => s.requests_per_s,
        Headline::EventsPerSecond => s.events_per_s,
        Headline::TtfeP99 => s.ttfe_ms.p99,
        Headline::RssPerStream => rss_per_stream_kib(scenario, run),
        Headline::LatencyP99 => s.stream_ms.p99,
    }
}

fn higher_is_better(h: Headline) -> bool {
    !matches!(
        h,
        Headline::TtfeP99 | Headline::RssPerStream | Headline::LatencyP99
    )
}

/// Whether every stream of the scenario is open at once (then RSS per stream means something).
fn all_at_once(scenario: &Scenario) -> bool {
    scenario.concurrency >= scenario.requests
}

fn rss_per_stream_kib(scenario: &Scenario, run: &RunRecord) -> f64 {
    run.peak_rss_kib.saturating_sub(run.idle_rss_kib) as f64 / scenario.concurrency.max(1) as f64
}

fn cpu_us_per_event(run: &RunRecord) -> f64 {
    if run.summary.events == 0 {
        // Rejections carry no events: shown as "–", not as CPU per one imaginary event.
        return f64::NAN;
    }
    run.cpu_s * 1e6 / run.summary.events as f64
}

fn cpu_us_per_request(run: &RunRecord) -> f64 {
    run.cpu_s * 1e6 / run.summary.requests_ok.max(1) as f64
}

/// A number with thousands separators and sensible precision.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    if x.abs() >= 100.0 {
        let n = x.round() as i64;
        let digits = n.abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 {
            out.insert(0, '-');
        }
        out
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn with_range(s: Spread, runs: usize) -> String {
    if runs > 1 {
        format!("{} ({}–{})", num(s.median), num(s.min), num(s.max))
    } else {
        num(s.median)
    }
}

/// Whether a peer's headline is more than 30 % below its reference (the ratios against it are
/// then marked invalid), with the reference value.
pub fn weak_peer(server: ServerId, scenario: &Scenario, cell: &Cell) -> Option<(f64, f64)> {
    let reference = reference(server, &scenario.id)?;
    if cell.runs.is_empty() {
        return None;
    }
    let measured = spread(cell, |r| headline(scenario, r)).median;
    (measured < reference * (1.0 - WEAK_PEER)).then_some((measured, reference))
}

/// agui-server's ratio to `peer` on the scenario's headline (> 1 = agui-server better).
pub fn ratio(scenario: &Scenario, agui: &Cell, peer: &Cell) -> Option<f64> {
    if agui.runs.is_empty() || peer.runs.is_empty() {
        return None;
    }
    let a = spread(agui, |r| headline(scenario, r)).median;
    let p = spread(peer, |r| headline(scenario, r)).median;
    if a <= 0.0 || p <= 0.0 {
        return None;
    }
    Some(if higher_is_better(scenario.headline) {
        a / p
    } else {
        p / a
    })
}

fn agui_of(scenario: &Scenario) -> ServerId {
    if scenario.servers.contains(&ServerId::AguiServerAgent) {
        ServerId::AguiServerAgent
    } else {
        ServerId::AguiServer
    }
}

fn scenario_table(out: &mut String, results: &Results, scenario: &Scenario) {
    let Some(cells) = results.cells.get(&scenario.id) else {
        return;
    };
    let _ = writeln!(out, "\n### {}\n", scenario.title);
    let _ = writeln!(
        out,
        "`{}`, {} concurrent, {} requests per run, {} run(s); headline: {}.\n",
        scenario.message,
        scenario.concurrency,
        scenario.requests,
        scenario.runs,
        match scenario.headline {
            Headline::RequestsPerSecond => "requests/s",
            Headline::EventsPerSecond => "events/s",
            Headline::TtfeP99 => "time-to-first-event p99 (ms, lower is better)",
            Headline::RejectsPerSecond => "rejects/s (every request must get 401)",
            Headline::RssPerStream => "RSS per open stream above idle (KiB, lower is better)",
            Headline::LatencyP99 =>
                "request sent → end of the replay, p99 (ms, lower is better; p50 under stream)",
        }
    );
    out.push_str("| server | valid | headline (median, min–max) | req/s | events/s | TTFB p50/p99 ms | TTFE p50/p90/p99/max ms | stream p50/p99 ms | CPU µs/event | CPU µs/req | CPU % | client CPU % | peak RSS MiB | ΔRSS/stream KiB | listen overflows | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let floor = cells.get(&ServerId::Floor).filter(|c| !c.runs.is_empty());
    for (server, cell) in cells {
        if let Some(reason) = &cell.skipped {
            let _ = writeln!(
                out,
                "| {} | skipped: {} ||||||||||||||| ",
                server.label(),
                reason.replace('|', "/")
            );
            continue;
        }
        let n = cell.runs.len();
        let valid = cell.runs.iter().filter(|r| r.valid).count();
        let m = |f: &dyn Fn(&RunRecord) -> f64| spread(cell, f).median;
        let mut head = with_range(spread(cell, |r| headline(scenario, r)), n);
        if let (Some(floor), true) = (floor, matches!(server, ServerId::AguiServer)) {
            let f = spread(floor, |r| headline(scenario, r)).median;
            let a = spread(cell, |r| headline(scenario, r)).median;
            if higher_is_better(scenario.headline) && f > 0.0 && a >= CLIENT_BOUND * f {
                head = format!("≥ {head} (client-bound)");
            }
        }
        if let Some((_, reference)) = weak_peer(*server, scenario, cell) {
            head = format!("{head} ⚠ below reference {}", num(reference));
        }
        let errors: u64 = cell.runs.iter().map(|r| r.summary.errors).sum();
        let kinds: Vec<String> = cell
            .runs
            .iter()
            .flat_map(|r| {
                r.summary
                    .errors_by_kind
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {valid}/{n} | {head} | {} | {} | {}/{} | {}/{}/{}/{} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
            server.label(),
            num(m(&|r| r.summary.requests_per_s)),
            num(m(&|r| r.summary.events_per_s)),
            num(m(&|r| r.summary.ttfb_ms.p50)),
            num(m(&|r| r.summary.ttfb_ms.p99)),
            num(m(&|r| r.summary.ttfe_ms.p50)),
            num(m(&|r| r.summary.ttfe_ms.p90)),
            num(m(&|r| r.summary.ttfe_ms.p99)),
            num(m(&|r| r.summary.ttfe_ms.max)),
            num(m(&|r| r.summary.stream_ms.p50)),
            num(m(&|r| r.summary.stream_ms.p99)),
            if cell.runs.iter().all(|r| r.summary.events == 0) {
                "–".to_owned()
            } else {
                num(m(&cpu_us_per_event))
            },
            num(m(&cpu_us_per_request)),
            num(m(&|r| 100.0 * r.cpu_s / r.summary.wall_s.max(1e-9))),
            num(m(&|r| 100.0 * r.client_cpu_s / r.summary.wall_s.max(1e-9))),
            num(m(&|r| r.peak_rss_kib as f64 / 1024.0)),
            if all_at_once(scenario) {
                num(m(&|r| rss_per_stream_kib(scenario, r)))
            } else {
                "–".to_owned()
            },
            num(m(&|r| r.listen_overflows as f64)),
            errors,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
        );
    }
    // What the server kept of the burst once every stream had ended (the soak, issue #12).
    if let Some(line) = settled_line(scenario, cells) {
        let _ = writeln!(out, "\n{line}");
    }
    // What storing history costs: the same build with it off.
    if let (Some(on), Some(off)) = (
        cells.get(&ServerId::AguiServer),
        cells.get(&ServerId::AguiServerNoHistory),
    ) && let Some(r) = ratio(scenario, on, off)
    {
        let cpu = |c: &Cell| spread(c, cpu_us_per_event).median;
        let _ = writeln!(
            out,
            "\nHistory on vs off (same build, `[history] enabled = false`): headline **{r:.2}×** (1 = no cost), CPU {} vs {} µs/event.",
            num(cpu(on)),
            num(cpu(off))
        );
    }
    // Ratios of agui-server to each peer.
    let agui = agui_of(scenario);
    if let Some(agui_cell) = cells.get(&agui) {
        let mut parts = Vec::new();
        for (server, cell) in cells {
            if !server.is_peer() {
                continue;
            }
            if let Some(r) = ratio(scenario, agui_cell, cell) {
                let mut text = format!("{} **{:.1}×**", server.label(), r);
                if weak_peer(*server, scenario, cell).is_some() {
                    text.push_str(" (invalid: peer below its reference)");
                }
                if cell.runs.iter().any(|r| !r.valid) || agui_cell.runs.iter().any(|r| !r.valid) {
                    text.push_str(" (invalid: a run had errors)");
                }
                parts.push(text);
            }
        }
        if !parts.is_empty() {
            let _ = writeln!(
                out,
                "\n{} vs peers (>1 = {} better): {}.",
                agui.label(),
                agui.label(),
                parts.join(", ")
            );
        }
    }
}

/// "RSS 60 s after the streams ended: …" for a scenario that reads it ([`Scenario::settle_s`]):
/// per server, the RSS then, beside idle and peak, and the share of the burst (peak − idle) given
/// back. None when no run has the figure.
fn settled_line(
    scenario: &Scenario,
    cells: &std::collections::BTreeMap<ServerId, Cell>,
) -> Option<String> {
    if scenario.settle_s == 0 {
        return None;
    }
    let parts: Vec<String> = cells
        .iter()
        .filter_map(|(server, cell)| {
            let runs: Vec<&RunRecord> = cell
                .runs
                .iter()
                .filter(|r| r.settled_rss_kib.is_some())
                .collect();
            if runs.is_empty() {
                return None;
            }
            let median =
                |f: &dyn Fn(&RunRecord) -> f64| Spread::of(runs.iter().map(|r| f(r))).median;
            let after = median(&|r| r.settled_rss_kib.unwrap_or(0) as f64);
            let idle = median(&|r| r.idle_rss_kib as f64);
            let peak = median(&|r| r.peak_rss_kib as f64);
            let mib = |kib: f64| num(kib / 1024.0);
            let back = if peak > idle {
                format!(
                    "{} % of the burst given back",
                    num(100.0 * (peak - after.min(peak)) / (peak - idle))
                )
            } else {
                "no burst above idle".to_owned()
            };
            Some(format!(
                "{} **{} MiB** (idle {} MiB, peak {} MiB; {back})",
                server.label(),
                mib(after),
                mib(idle),
                mib(peak)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "RSS {} s after the streams ended: {}.",
            scenario.settle_s,
            parts.join("; ")
        )
    })
}

struct Target {
    text: &'static str,
    verdict: String,
}

fn median_of(
    results: &Results,
    scenario: &str,
    server: ServerId,
    f: impl Fn(&Scenario, &RunRecord) -> f64,
) -> Option<f64> {
    let sc = results.scenarios.iter().find(|s| s.id == scenario)?;
    let cell = results.cells.get(scenario)?.get(&server)?;
    if cell.runs.is_empty() {
        return None;
    }
    Some(Spread::of(cell.runs.iter().map(|r| f(sc, r))).median)
}

fn targets(results: &Results) -> Vec<Target> {
    use ServerId::*;
    let ev = |s: &Scenario, r: &RunRecord| headline(s, r);
    let get = |sc: &str, sv: ServerId| median_of(results, sc, sv, ev);
    let verdict = |ok: Option<bool>, detail: String| match ok {
        Some(true) => format!("✅ {detail}"),
        Some(false) => format!("❌ {detail}"),
        None => format!("– not measured {detail}"),
    };
    let ratio2 = |sc: &str, peer: ServerId| Some(get(sc, AguiServer)? / get(sc, peer)?);
    let mut list = Vec::new();
    let (n, p, f) = (
        ratio2("std_c50", Node),
        ratio2("std_c50", PythonUvloop),
        ratio2("std_c50", Floor),
    );
    list.push(Target {
        text: "std at 50: events/s ≥ 2× Node, ≥ 12× tuned Python, ≥ 0.5× the floor",
        verdict: verdict(
            n.zip(p)
                .map(|(n, p)| n >= 2.0 && p >= 12.0 && f.is_none_or(|f| f >= 0.5)),
            format!(
                "(Node {}×, Python uvloop {}×, floor {}×)",
                n.map_or("–".into(), num),
                p.map_or("–".into(), num),
                f.map_or("–".into(), num)
            ),
        ),
    });
    let (on_off, on_node) = (
        ratio2("std_c50", AguiServerNoHistory),
        ratio2("std_c50", Node),
    );
    // What history costs the server: CPU per event off / on. The events/s ratio alone cannot
    // show it once either side saturates the load client (both then stream at the client's
    // pace), so the verdict takes both.
    let cpu = |sv| median_of(results, "std_c50", sv, |_, r| cpu_us_per_event(r));
    let cpu_off_on = cpu(AguiServerNoHistory)
        .zip(cpu(AguiServer))
        .map(|(off, on)| off / on);
    list.push(Target {
        text: "std at 50 with history on: events/s and CPU per event within 10 % of history off (same build), still ≥ 2× Node",
        verdict: verdict(
            on_off
                .zip(on_node)
                .zip(cpu_off_on)
                .map(|((o, n), c)| o >= 0.9 && c >= 0.9 && n >= 2.0),
            format!(
                "(on/off {}× events/s, {}× CPU per event (off/on), Node {}×)",
                // Three decimals: a ratio that misses 0.90 by a little must not print as 0.90.
                on_off.map_or("–".into(), |r| format!("{r:.3}")),
                cpu_off_on.map_or("–".into(), |r| format!("{r:.3}")),
                on_node.map_or("–".into(), num)
            ),
        ),
    });
    let long = median_of(results, "long", AguiServer, |_, r| cpu_us_per_event(r));
    let long_off = median_of(results, "long", AguiServerNoHistory, |_, r| {
        cpu_us_per_event(r)
    });
    list.push(Target {
        text: "long with history on: CPU ≤ 1.0 µs per event",
        verdict: verdict(
            long.map(|x| x <= 1.0),
            format!(
                "({} µs/event; history off {} µs/event)",
                long.map_or("–".into(), num),
                long_off.map_or("–".into(), num)
            ),
        ),
    });
    let connect = median_of(results, "connect", AguiServer, |_, r| {
        r.summary.stream_ms.p99
    });
    let connect_p50 = median_of(results, "connect", AguiServer, |_, r| {
        r.summary.stream_ms.p50
    });
    let connect_valid = median_of(results, "connect", AguiServer, |_, r| {
        f64::from(u8::from(r.valid))
    });
    list.push(Target {
        text: "connect: replay of a 50-run thread, p99 ≤ 5 ms (to the end of the replay)",
        verdict: verdict(
            connect
                .zip(connect_valid)
                .map(|(p, v)| p <= 5.0 && v == 1.0),
            format!(
                "(p50 {} ms, p99 {} ms)",
                connect_p50.map_or("–".into(), num),
                connect.map_or("–".into(), num)
            ),
        ),
    });
    let join_ok = median_of(results, "join", AguiServer, |_, r| {
        f64::from(u8::from(r.valid))
    });
    let join_p50 = median_of(results, "join", AguiServer, |_, r| r.summary.ttfe_ms.p50);
    let join_p99 = median_of(results, "join", AguiServer, |_, r| r.summary.ttfe_ms.p99);
    list.push(Target {
        text: "join: every client that connects during a run gets the whole reply (the live tail)",
        verdict: verdict(
            join_ok.map(|v| v == 1.0),
            format!(
                "(time to first event p50 {} ms, p99 {} ms)",
                join_p50.map_or("–".into(), num),
                join_p99.map_or("–".into(), num)
            ),
        ),
    });
    let short = ratio2("short", Node);
    list.push(Target {
        text: "short: requests/s ≥ 4× Node with a reused token",
        verdict: verdict(
            short.map(|x| x >= 4.0),
            format!("({}×)", short.map_or("–".into(), num)),
        ),
    });
    let fresh = ratio2("short_fresh", Node);
    list.push(Target {
        text: "short: requests/s ≥ 2× Node with a fresh token per request",
        verdict: verdict(
            fresh.map(|x| x >= 2.0),
            format!("({}×)", fresh.map_or("–".into(), num)),
        ),
    });
    let p99 = median_of(results, "slow", AguiServer, |_, r| r.summary.ttfe_ms.p99);
    let over = median_of(results, "slow", AguiServer, |_, r| {
        r.listen_overflows as f64
    });
    let p50 = median_of(results, "slow", AguiServer, |_, r| r.summary.stream_ms.p50);
    let floor_p99 = median_of(results, "slow", Floor, |_, r| r.summary.ttfe_ms.p99);
    let floor_p50 = median_of(results, "slow", Floor, |_, r| r.summary.stream_ms.p50);
    list.push(Target {
        text: "slow at 1,000: TTFE p99 ≤ 25 ms, zero listen overflows, stream p50 within 3 % of 10 s",
        verdict: verdict(
            p99.zip(over).zip(p50).map(|((a, b), c)| a <= 25.0 && b == 0.0 && c <= 10_300.0),
            format!(
                "(p99 {} ms, overflows {}, stream p50 {} ms; the floor: p99 {} ms, stream p50 {} ms)",
                p99.map_or("–".into(), num),
                over.map_or("–".into(), num),
                p50.map_or("–".into(), num),
                floor_p99.map_or("–".into(), num),
                floor_p50.map_or("–".into(), num)
            ),
        ),
    });
    let rss = median_of(results, "soak", AguiServer, rss_per_stream_kib);
    let soak_errors = median_of(results, "soak", AguiServer, |_, r| r.summary.errors as f64);
    let floor_rss = median_of(results, "soak", Floor, rss_per_stream_kib);
    let settled = median_of(results, "soak", AguiServer, |_, r| {
        r.settled_rss_kib
            .map_or(f64::NAN, |kib| kib as f64 / 1024.0)
    })
    .filter(|mib| *mib > 0.0);
    list.push(Target {
        text: "memory: ≤ 16 KiB RSS per open stream above idle at 10,000 streams, zero errors",
        verdict: verdict(
            rss.zip(soak_errors).map(|(r, e)| r <= 16.0 && e == 0.0),
            format!(
                "({} KiB/stream, {} errors; the floor: {} KiB/stream; RSS {} s after the streams ended: {} MiB)",
                rss.map_or("–".into(), num),
                soak_errors.map_or("–".into(), num),
                floor_rss.map_or("–".into(), num),
                crate::suite::SOAK_SETTLE_S,
                settled.map_or("–".into(), num)
            ),
        ),
    });
    let agent = median_of(results, "agent_c1", AguiServerAgent, |_, r| {
        cpu_us_per_event(r)
    });
    let agent_ratio = median_of(results, "agent_c50", AguiServerAgent, ev)
        .zip(median_of(results, "agent_c50", Ag2, ev))
        .map(|(a, b)| a / b);
    list.push(Target {
        text: "agent: CPU ≤ 10 µs per event, ≥ 50× AG2 events/s on the same mock",
        verdict: verdict(
            agent.zip(agent_ratio).map(|(a, r)| a <= 10.0 && r >= 50.0),
            format!(
                "({} µs/event, {}× AG2)",
                agent.map_or("–".into(), num),
                agent_ratio.map_or("–".into(), num)
            ),
        ),
    });
    list
}

/// Features agui-server runs on every request that the peers do not.
pub const EXTRA_FEATURES: &[&str] = &[
    "OIDC discovery and a JWKS cache with refresh (the peers read a JWKS file once)",
    "full claim validation: alg allowlist per key, `typ`, `nbf`/`iat`/`sub`, token size cap, leeway (the peers check signature, `iss`, `aud`, `exp`)",
    "a typed `Principal` built from the claims; the token removed from `forwardedProps`",
    "RunAgentInput validation with limits (message count, body size) and AG-UI dialect negotiation",
    "the sequence guard on every event (the server cannot emit an invalid stream)",
    "a run task per stream feeding a bounded channel; cancellation when the client goes away; run deadline",
    "open-stream accounting against `max_open_streams`; keep-alive comment timer",
    "per-user limits (a run-rate token bucket and an open-stream count per principal) checked on every run",
    "thread ownership checked in the store (SQLite, WAL) and the run's start committed to the audit log before the stream opens; the run's end recorded after it",
    "structured JSON logs (`AGUI_LOG_FORMAT=json`, level info: one line per run start and end); the peers run with access logs off",
    "Prometheus metrics updated per request and per event; graceful-shutdown tracking of every run",
    "thread history (`[history] enabled = true`, the production default): every run's events, compacted, appended per thread through the group commit; `agui-server (history off)` is the same build and profile with only that switched off",
];

/// Renders `latest.md`.
pub fn markdown(results: &Results, chart: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# agui-server benchmark ({})\n", results.mode);
    let _ = writeln!(out, "- **Date:** {}", results.started);
    let _ = writeln!(out, "- **Machine:** {}", results.machine);
    out.push_str("- **Pinning:** every server on CPU 0 (`taskset -c 0`); the load client, the JWKS server and the mock model on CPU 1.\n");
    out.push_str("- **Rules:** a fresh server process per scenario, a warm-up (one request, then a burst of 200 short streams, 5 runs for the agents, so JIT-compiled peers are measured warm), then the runs; medians with min–max; server CPU from its threads' `schedstat` nanoseconds (`/proc/<pid>/stat` ticks when a thread ended), peak RSS sampled every 50 ms, `TcpExt ListenOverflows` before/after each run. A run is valid only with zero errors and every stream ending in `RUN_FINISHED`.\n");
    let _ = writeln!(
        out,
        "- **Peers flagged** when more than {:.0} % below their reference figures (shared/reference/perf-peers.md); ratios against a flagged peer are marked invalid. A result above {:.0} % of the floor's is labelled client-bound (≥).\n",
        WEAK_PEER * 100.0,
        CLIENT_BOUND * 100.0
    );
    let _ = writeln!(
        out,
        "![events/s and p99 time-to-first-event by server]({chart})\n"
    );

    out.push_str("## Targets\n\n| target | result |\n|---|---|\n");
    for t in targets(results) {
        let _ = writeln!(out, "| {} | {} |", t.text, t.verdict);
    }

    out.push_str("\n## Peers against their reference figures\n\n| peer | scenario | measured | reference | status |\n|---|---|---|---|---|\n");
    for scenario in &results.scenarios {
        let Some(cells) = results.cells.get(&scenario.id) else {
            continue;
        };
        for (server, cell) in cells {
            let Some(reference) = reference(*server, &scenario.id) else {
                continue;
            };
            if cell.runs.is_empty() {
                continue;
            }
            let measured = spread(cell, |r| headline(scenario, r)).median;
            let status = if measured < reference * (1.0 - WEAK_PEER) {
                "⚠ more than 30 % below: ratios invalid"
            } else {
                "ok"
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {status} |",
                server.label(),
                scenario.id,
                num(measured),
                num(reference)
            );
        }
    }

    out.push_str("\n## Scenarios\n");
    for scenario in &results.scenarios {
        scenario_table(&mut out, results, scenario);
    }

    out.push_str("\n## agui-server's bench profile\n\nProduction defaults (auth on, the SQLite store and audit log, per-user limits, JSON logs, the scripted model), with only the per-user limits raised so that one benchmark user may open 10,000 streams at once (the limiter still runs on every request). Environment:\n\n```\n");
    for (k, v) in &results.profile {
        let _ = writeln!(out, "{k}={v}");
    }
    out.push_str("```\n\nWhat agui-server does on every request that the peers do not:\n\n");
    for f in EXTRA_FEATURES {
        let _ = writeln!(out, "- {f}");
    }
    if !results.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &results.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// Appends the profiler evidence (`bench/PROFILE.md`) to a report, one heading level down so it
/// nests under the report's title, with a link to its source.
pub fn append_profile(report: &mut String, profile: &str) {
    report.push_str("\n<!-- from bench/PROFILE.md -->\n");
    let mut in_code = false;
    for line in profile.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            report.push('#');
        }
        report.push_str(line);
        report.push('\n');
    }
}

/// Renders the chart: for the std-at-50 scenario (or the first scenario with data), events/s and
/// p99 time-to-first-event per server, both on log scales.
pub fn svg(results: &Results) -> String {
    let scenario = results
        .scenarios
        .iter()
        .find(|s| s.id == "std_c50" && results.cells.contains_key(&s.id))
        .or_else(|| {
            results
                .scenarios
                .iter()
                .find(|s| results.cells.contains_key(&s.id))
        });
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    if let Some(scenario) = scenario {
        for (server, cell) in &results.cells[&scenario.id] {
            if cell.runs.is_empty() {
                continue;
            }
            rows.push((
                server.label().to_owned(),
                spread(cell, |r| r.summary.events_per_s).median,
                spread(cell, |r| r.summary.ttfe_ms.p99).median,
            ));
        }
    }
    let title = scenario.map_or("no data".to_owned(), |s| s.title.clone());
    let (label_w, panel_w, bar_h, gap) = (170.0, 300.0, 20.0, 8.0);
    let height = 70.0 + rows.len() as f64 * (bar_h + gap);
    let width = label_w + 2.0 * panel_w + 60.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="18" font-size="14" font-weight="bold">{} — {}</text>"#,
        xml(&title),
        xml(&results.started)
    );
    let panels = [
        ("events/s (log scale, higher is better)", 1usize),
        ("TTFE p99 ms (log scale, lower is better)", 2usize),
    ];
    for (p, (name, which)) in panels.iter().enumerate() {
        let x0 = label_w + p as f64 * (panel_w + 30.0);
        let _ = writeln!(out, r#"<text x="{x0}" y="44">{}</text>"#, xml(name));
        let values: Vec<f64> = rows
            .iter()
            .map(|r| if *which == 1 { r.1 } else { r.2 })
            .collect();
        let max = values.iter().cloned().fold(1.0_f64, f64::max);
        let min = values
            .iter()
            .cloned()
            .filter(|v| *v > 0.0)
            .fold(max, f64::min)
            .min(max / 10.0)
            .max(1e-3);
        let (lo, hi) = (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        );
        for (i, v) in values.iter().enumerate() {
            let y = 56.0 + i as f64 * (bar_h + gap);
            let w = if *v > 0.0 {
                ((v.log10() - lo) / (hi - lo) * panel_w).max(2.0)
            } else {
                0.0
            };
            let color = if rows[i].0.starts_with("agui-server") {
                "#d9480f"
            } else if rows[i].0.starts_with("floor") {
                "#868e96"
            } else {
                "#1c7ed6"
            };
            let _ = writeln!(
                out,
                r#"<rect x="{x0}" y="{y}" width="{w:.1}" height="{bar_h}" fill="{color}"/>"#
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x0 + w + 4.0,
                y + 14.0,
                num(*v)
            );
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let y = 56.0 + i as f64 * (bar_h + gap) + 14.0;
        let _ = writeln!(out, r#"<text x="10" y="{y:.1}">{}</text>"#, xml(&row.0));
    }
    out.push_str("</svg>\n");
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_profile_nests_under_the_report_and_code_is_left_alone() {
        let mut report = String::from("# agui-server benchmark\n");
        append_profile(
            &mut report,
            "# Where the time goes\n\n## Short\n\n```sh\n# a comment\n```\n",
        );
        assert!(report.contains("\n## Where the time goes\n"), "{report}");
        assert!(report.contains("\n### Short\n"), "{report}");
        assert!(report.contains("\n# a comment\n"), "{report}");
    }

    use super::*;
    use crate::stats::Summary;
    use crate::suite::{TokenMode, scenarios};

    fn run(events_per_s: f64, requests_per_s: f64) -> RunRecord {
        RunRecord {
            summary: Summary {
                requests_ok: 100,
                events_per_s,
                requests_per_s,
                events: 1000,
                wall_s: 1.0,
                ..Summary::default()
            },
            requested: 100,
            cpu_s: 0.5,
            valid: true,
            ..RunRecord::default()
        }
    }

    fn results() -> Results {
        let list = scenarios("full");
        let mut results = Results {
            mode: "full".into(),
            scenarios: list,
            ..Results::default()
        };
        let cells = results.cells.entry("std_c50".into()).or_default();
        cells.insert(
            ServerId::AguiServer,
            Cell {
                runs: vec![run(900_000.0, 1.0); 3],
                skipped: None,
            },
        );
        cells.insert(
            ServerId::Node,
            Cell {
                runs: vec![run(300_000.0, 1.0); 3],
                skipped: None,
            },
        );
        // A Python peer far below its 40k reference.
        cells.insert(
            ServerId::PythonUvloop,
            Cell {
                runs: vec![run(10_000.0, 1.0); 3],
                skipped: None,
            },
        );
        cells.insert(
            ServerId::Floor,
            Cell {
                runs: vec![run(1_000_000.0, 1.0); 3],
                skipped: None,
            },
        );
        results
    }

    #[test]
    fn ratios_weak_peers_and_client_bound_labels() {
        let results = results();
        let sc = results
            .scenarios
            .iter()
            .find(|s| s.id == "std_c50")
            .unwrap();
        let cells = &results.cells["std_c50"];
        let r = ratio(sc, &cells[&ServerId::AguiServer], &cells[&ServerId::Node]).unwrap();
        assert!((r - 3.0).abs() < 1e-9);
        assert!(weak_peer(ServerId::PythonUvloop, sc, &cells[&ServerId::PythonUvloop]).is_some());
        // Positive control: Node is within 30 % of its 304k reference.
        assert!(weak_peer(ServerId::Node, sc, &cells[&ServerId::Node]).is_none());
        let md = markdown(&results, "chart.svg");
        assert!(md.contains("Node **3.0×**"), "{md}");
        assert!(
            md.contains("Python uvloop **90.0×** (invalid: peer below its reference)"),
            "{md}"
        );
        assert!(md.contains("(client-bound)"));
        assert!(md.contains("AGUI_") || results.profile.is_empty());
    }

    #[test]
    fn lower_is_better_ratios_invert() {
        let mut sc = scenarios("full")
            .into_iter()
            .find(|s| s.id == "slow")
            .unwrap();
        sc.token = TokenMode::Reused;
        let mut fast = run(0.0, 0.0);
        fast.summary.ttfe_ms.p99 = 10.0;
        let mut slow = run(0.0, 0.0);
        slow.summary.ttfe_ms.p99 = 1000.0;
        let r = ratio(
            &sc,
            &Cell {
                runs: vec![fast],
                skipped: None,
            },
            &Cell {
                runs: vec![slow],
                skipped: None,
            },
        )
        .unwrap();
        assert!((r - 100.0).abs() < 1e-9);
    }

    #[test]
    fn the_soak_reports_rss_a_minute_after_its_streams_end() {
        let mut results = results();
        let soak = |idle: u64, peak: u64, settled: Option<u64>| RunRecord {
            idle_rss_kib: idle,
            peak_rss_kib: peak,
            settled_rss_kib: settled,
            ..run(100_000.0, 1.0)
        };
        let cells = results.cells.entry("soak".into()).or_default();
        // agui-server: 20 MiB idle, 120 MiB at the peak, 45 MiB a minute later (75 % back).
        cells.insert(
            ServerId::AguiServer,
            Cell {
                runs: vec![soak(20 * 1024, 120 * 1024, Some(45 * 1024))],
                skipped: None,
            },
        );
        // The floor's run has no such figure (an older results file): no entry for it.
        cells.insert(
            ServerId::Floor,
            Cell {
                runs: vec![soak(1024, 2048, None)],
                skipped: None,
            },
        );
        let md = markdown(&results, "chart.svg");
        assert!(
            md.contains(
                "RSS 60 s after the streams ended: agui-server **45.0 MiB** (idle 20.0 MiB, peak 120 MiB; 75.0 % of the burst given back)."
            ),
            "{md}"
        );
        assert!(
            md.contains("RSS 60 s after the streams ended: 45.0 MiB)"),
            "the memory target shows it too: {md}"
        );
        // Positive control: a scenario that does not settle prints no such line, and without
        // the figure the target says so.
        results
            .cells
            .get_mut("soak")
            .unwrap()
            .remove(&ServerId::AguiServer);
        let md = markdown(&results, "chart.svg");
        assert!(
            !md.contains("RSS 60 s after the streams ended: agui-server"),
            "{md}"
        );
        assert!(!md.contains("after the streams ended: 45"), "{md}");
    }

    #[test]
    fn svg_has_a_bar_per_server() {
        let svg = svg(&results());
        assert_eq!(svg.matches("<rect x=").count(), 8);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(num(1_234_567.4), "1,234,567");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(0.456), "0.46");
    }
}
