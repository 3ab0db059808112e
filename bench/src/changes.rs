//! The report's "what changed" section: the targets and agui-server's headlines of the new
//! report beside those of the report it replaces (the committed `bench/results/latest.md`).
//!
//! It reads both reports as the Markdown they are, so it needs nothing but the previous file:
//! no raw results are committed, and a report written by an older harness still compares.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The heading the section goes under.
pub const HEADING: &str = "## What changed since the previous report";

/// The parts of a report the section compares.
#[derive(Debug, Default, PartialEq)]
struct Parsed {
    /// `full` or `quick`.
    mode: String,
    date: String,
    /// Target text → verdict, in report order.
    targets: Vec<(String, String)>,
    /// Scenario title → (agui-server rows' headline cells by server label, lower is better).
    headlines: Vec<(String, BTreeMap<String, String>, bool)>,
}

fn parse(report: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut section = "";
    let mut scenario: Option<usize> = None;
    for line in report.lines() {
        if let Some(mode) = line
            .strip_prefix("# agui-server benchmark (")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            parsed.mode = mode.to_owned();
        } else if let Some(date) = line.strip_prefix("- **Date:** ") {
            parsed.date = date.trim().to_owned();
        } else if let Some(title) = line.strip_prefix("## ") {
            section = match title {
                "Targets" => "targets",
                "Scenarios" => "scenarios",
                _ => "",
            };
            scenario = None;
        } else if section == "scenarios"
            && let Some(title) = line.strip_prefix("### ")
        {
            parsed
                .headlines
                .push((title.trim().to_owned(), BTreeMap::new(), false));
            scenario = Some(parsed.headlines.len() - 1);
        } else if section == "scenarios"
            && line.starts_with('`')
            && line.contains("lower is better")
            && let Some(i) = scenario
        {
            parsed.headlines[i].2 = true;
        } else if line.starts_with("| ") && !line.starts_with("|---") {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // "| a | b | c |" splits into ["", "a", "b", "c", ""].
            match section {
                "targets" if cells.len() >= 4 && cells[1] != "target" => {
                    parsed
                        .targets
                        .push((cells[1].to_owned(), cells[2].to_owned()));
                }
                "scenarios" if cells.len() >= 4 && cells[1].starts_with("agui-server") => {
                    if let Some(i) = scenario {
                        parsed.headlines[i]
                            .1
                            .insert(cells[1].to_owned(), cells[3].to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    parsed
}

/// The median of a headline cell such as `≥ 5,387 (5,318–5,970) (client-bound)`.
fn median(cell: &str) -> Option<f64> {
    let number: String = cell
        .trim_start_matches(['≥', ' '])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .filter(|c| *c != ',')
        .collect();
    number.parse().ok()
}

/// The section comparing `current` with `previous`, or `None` when there is nothing to compare
/// (no previous report, or the same run rendered again: then the previous report's own section
/// is kept by [`carry_over`]).
pub fn section(previous: &str, current: &str) -> Option<String> {
    let before = parse(previous);
    let now = parse(current);
    if before.date.is_empty() || before.date == now.date {
        return None;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{HEADING} ({}, {})\n",
        before.date,
        if before.mode.is_empty() {
            "mode unknown"
        } else {
            &before.mode
        }
    );
    if before.mode != now.mode {
        let _ = writeln!(
            out,
            "The previous report was a {} run and this one is {}: their figures are not comparable.",
            before.mode, now.mode
        );
        return Some(out);
    }
    out.push_str("| target | before | now |\n|---|---|---|\n");
    for (text, verdict) in &now.targets {
        // A target whose wording changed is found by what comes before its colon (the
        // scenario it judges), which stays.
        let subject = |t: &str| t.split_once(':').map_or(t, |(s, _)| s).to_owned();
        let previous = before
            .targets
            .iter()
            .find(|(t, _)| t == text)
            .or_else(|| {
                before
                    .targets
                    .iter()
                    .find(|(t, _)| subject(t) == subject(text))
            })
            .map_or("(new target)", |(_, v)| v.as_str());
        let _ = writeln!(out, "| {text} | {previous} | {verdict} |");
    }
    out.push_str(
        "\n| scenario | server | headline before | now | now / before |\n|---|---|---|---|---|\n",
    );
    for (title, rows, lower_is_better) in &now.headlines {
        let previous = before.headlines.iter().find(|(t, _, _)| t == title);
        for (server, cell) in rows {
            let old = previous.and_then(|(_, rows, _)| rows.get(server));
            let change = match (old.and_then(|c| median(c)), median(cell)) {
                (Some(a), Some(b)) if a > 0.0 => {
                    let better = if *lower_is_better { b < a } else { b > a };
                    format!(
                        "{:.2}× ({})",
                        b / a,
                        if (b / a - 1.0).abs() < 0.05 {
                            "same within 5 %"
                        } else if better {
                            "better"
                        } else {
                            "worse"
                        }
                    )
                }
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {title} | {server} | {} | {cell} | {change} |",
                old.map_or("(new)", String::as_str)
            );
        }
    }
    Some(out)
}

/// The previous report's own "what changed" section, for a report of the same run rendered
/// again (`agui-bench report`).
pub fn carry_over(previous: &str, current: &str) -> Option<String> {
    if parse(previous).date != parse(current).date {
        return None;
    }
    let start = previous.find(HEADING)?;
    let rest = &previous[start..];
    let end = rest[HEADING.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + HEADING.len() + 1);
    Some(rest[..end].to_owned())
}

/// Puts `section` into `report` right after its targets table.
pub fn insert(report: &mut String, section: &str) {
    let at = report.find("\n## Peers").map_or(report.len(), |i| i + 1);
    let mut block = section.trim_end().to_owned();
    block.push_str("\n\n");
    report.insert_str(at, &block);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(date: &str, short: &str, short_verdict: &str, slow: &str) -> String {
        format!(
            "# agui-server benchmark (full)\n\n- **Date:** {date}\n\n## Targets\n\n| target | result |\n|---|---|\n\
             | short: requests/s ≥ 4× Node | {short_verdict} |\n\n## Peers against their reference figures\n\n\
             | peer | scenario | measured | reference | status |\n|---|---|---|---|---|\n| Node | short | 5,052 | 6,565 | ok |\n\n\
             ## Scenarios\n\n### short: 5 deltas\n\n`/stream 5`, 50 concurrent; headline: requests/s.\n\n\
             | server | valid | headline (median, min–max) | req/s |\n|---|---|---|---|\n\
             | agui-server | 3/3 | {short} | 1 |\n| Node | 3/3 | 5,052 (2,150–5,739) | 1 |\n\n\
             ### slow: 1,000 streams\n\n`/stream 10`, 1000 concurrent; headline: time-to-first-event p99 (ms, lower is better).\n\n\
             | server | valid | headline (median, min–max) | req/s |\n|---|---|---|---|\n\
             | agui-server | 3/3 | {slow} | 1 |\n"
        )
    }

    #[test]
    fn compares_targets_and_headlines_with_direction() {
        let before = report(
            "2026-12-03 10:09 UTC",
            "5,387 (5,318–5,970)",
            "❌ (1.07×)",
            "142 (130–150)",
        );
        let now = report(
            "2026-12-03 14:31 UTC",
            "≥ 8,080 (8,000–8,100) (client-bound)",
            "❌ (1.54×)",
            "167 (160–170)",
        );
        let section = section(&before, &now).expect("a section");
        assert!(
            section.contains("(2026-12-03 10:09 UTC, full)"),
            "{section}"
        );
        assert!(
            section.contains("| short: requests/s ≥ 4× Node | ❌ (1.07×) | ❌ (1.54×) |"),
            "{section}"
        );
        assert!(
            section.contains("| short: 5 deltas | agui-server | 5,387 (5,318–5,970) | ≥ 8,080 (8,000–8,100) (client-bound) | 1.50× (better) |"),
            "{section}"
        );
        // Lower is better for a p99: 142 → 167 ms is worse.
        assert!(section.contains("| 1.18× (worse) |"), "{section}");
        // Peers' rows are not agui-server's headline.
        assert!(!section.contains("Node | 5,052"), "{section}");
    }

    #[test]
    fn a_reworded_target_is_compared_by_its_scenario() {
        let before = report("2026-12-03 10:09 UTC", "5,387", "❌ (1.07×)", "142");
        let now = report("2026-12-03 14:31 UTC", "5,400", "❌ (1.54×)", "140").replace(
            "short: requests/s ≥ 4× Node",
            "short: requests/s and CPU per request ≥ 4× Node",
        );
        let section = section(&before, &now).expect("a section");
        assert!(
            section.contains(
                "| short: requests/s and CPU per request ≥ 4× Node | ❌ (1.07×) | ❌ (1.54×) |"
            ),
            "{section}"
        );
        // Positive control: a target of another scenario is new.
        let other = now.replace(
            "short: requests/s and CPU per request ≥ 4× Node",
            "shorter: requests/s ≥ 4× Node",
        );
        let section = super::section(&before, &other).expect("a section");
        assert!(
            section.contains("| shorter: requests/s ≥ 4× Node | (new target) |"),
            "{section}"
        );
    }

    #[test]
    fn nothing_to_compare_without_a_previous_report_or_for_the_same_run() {
        let now = report("2026-12-03 14:31 UTC", "1 (1–1)", "❌", "1 (1–1)");
        assert_eq!(section("", &now), None);
        assert_eq!(section(&now, &now), None);
        // A positive control: another date compares.
        let other = now.replace("14:31", "15:00");
        assert!(section(&now, &other).is_some());
    }

    #[test]
    fn a_quick_run_is_not_compared_with_a_full_one() {
        let full = report("2026-12-03 10:09 UTC", "1 (1–1)", "❌", "1 (1–1)");
        let quick =
            report("2026-12-03 14:31 UTC", "2 (2–2)", "❌", "1 (1–1)").replace("(full)", "(quick)");
        let section = section(&full, &quick).expect("a section");
        assert!(section.contains("not comparable"), "{section}");
        assert!(!section.contains("| target |"), "{section}");
    }

    #[test]
    fn the_section_lands_after_the_targets_and_survives_a_rerender() {
        let before = report("2026-12-03 10:09 UTC", "1 (1–1)", "❌", "1 (1–1)");
        let mut now = report("2026-12-03 14:31 UTC", "2 (2–2)", "❌", "1 (1–1)");
        let section = section(&before, &now).unwrap();
        insert(&mut now, &section);
        let targets = now.find("## Targets").unwrap();
        let changed = now.find(HEADING).unwrap();
        let peers = now.find("## Peers").unwrap();
        assert!(targets < changed && changed < peers, "{now}");
        // Rendering the same run again keeps the section as it was.
        let fresh = report("2026-12-03 14:31 UTC", "2 (2–2)", "❌", "1 (1–1)");
        assert_eq!(
            carry_over(&now, &fresh).as_deref().map(str::trim_end),
            Some(section.trim_end())
        );
    }
}
