//! The partition planner: K from the pace and the size, cuts from probe counts, chains that stop
//! at their end, and the table that resumes them.

use std::time::Duration;

use time::macros::datetime;
use url::Url;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::fake::json;
use crate::sync::catalog::find;
use crate::sync::partition::{Pace, PartitionTable, chains_for, cut_points, split};
use crate::sync::{Bookmark, Step, SyncOptions};

fn base() -> Url {
    Url::parse("https://api.sky.blackbaud.com/").unwrap()
}

const UNPACED: Pace = Pace { rate: 0.0, latency: Duration::from_millis(5) };

fn first_page(high_water: &str) -> String {
    Bookmark::Chain {
        next_link: "https://api.sky.blackbaud.com/gift/v1/gifts?limit=10&last_modified=1600-01-01T00:00:00Z&sort_token=AAAAAAAAAAo%3d".into(),
        high_water: Some(high_water.into()),
    }
    .to_json()
}

fn times(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("2025-01-{i:02}T00:00:00Z")).collect()
}

#[test]
fn k_follows_the_pace_the_size_and_the_cap() {
    // 1.5 s pages at 10 calls/s keep 15 calls in flight: the cap decides.
    assert_eq!(chains_for(1000, Pace { rate: 10.0, latency: Duration::from_millis(1500) }, 8), 8);
    // 300 ms at 10/s: 3 calls in flight.
    assert_eq!(chains_for(1000, Pace { rate: 10.0, latency: Duration::from_millis(300) }, 8), 3);
    // Fast pages at a pace: one chain already uses it all.
    assert_eq!(chains_for(1000, Pace { rate: 5.0, latency: Duration::from_millis(2) }, 8), 1);
    // Few pages left: only chains that save a page's wait per call they add (each costs a probe
    // and an overshoot page; the probes cost a round trip).
    assert_eq!(chains_for(11, UNPACED, 8), 4);
    assert_eq!(chains_for(8, UNPACED, 8), 3);
    assert_eq!(chains_for(6, UNPACED, 8), 2);
    assert_eq!(chains_for(5, UNPACED, 8), 1);
    assert_eq!(chains_for(1, UNPACED, 8), 1);
    assert_eq!(chains_for(0, UNPACED, 8), 1);
    // `--partitions 1` turns it off; the cap holds.
    assert_eq!(chains_for(1000, UNPACED, 1), 1);
    assert_eq!(chains_for(1000, UNPACED, 4), 4);
}

#[test]
fn cuts_sit_near_the_quantiles() {
    // 100 records spread evenly: probe j counts those at or after it.
    let t = times(8);
    let counts: Vec<Option<u64>> = (1..=8u64).map(|j| Some(100 - j * 100 / 9)).collect();
    let cuts = cut_points(&t, &counts, 100, 4);
    assert_eq!(cuts.len(), 3, "{cuts:?}");
    assert!(cuts.windows(2).all(|w| w[0] < w[1]), "increasing: {cuts:?}");
}

#[test]
fn a_tie_block_that_holds_several_quantiles_leaves_fewer_chains() {
    // 90 of 100 records share one timestamp between probes 2 and 3: no cut can split them.
    let t = times(6);
    let counts = [Some(95), Some(95), Some(5), Some(5), Some(3), Some(0)];
    let cuts = cut_points(&t, &counts, 100, 4);
    assert!(cuts.len() < 3, "fewer chains: {cuts:?}");
    assert!(!cuts.is_empty());
    // Every record at one timestamp: nothing to split.
    let all_tied = [Some(100), Some(100), Some(0), Some(0), Some(0), Some(0)];
    assert!(cut_points(&t, &all_tied, 100, 4).is_empty(), "one block: one chain");
    let nothing_after = [Some(0); 6];
    assert!(cut_points(&t, &nothing_after, 100, 4).is_empty(), "no records after any probe: one chain");
    // Probes that failed are left out.
    assert!(cut_points(&t, &[None; 6], 100, 4).is_empty());
}

#[test]
fn a_split_probes_after_the_first_page_and_lays_out_chains() {
    let gifts = find("gifts").unwrap();
    let options = SyncOptions { page_size: Some(10), ..SyncOptions::default() };
    let now = datetime!(2026-01-15 12:00:00 UTC);
    let first = first_page("2023-01-01T00:00:00Z");
    // Small lists, offset lists and `--partitions 1` do not split.
    assert!(split(gifts, &base(), &options, &first, Some(25), 10, UNPACED, 8, now).is_none());
    assert!(split(find("events").unwrap(), &base(), &options, &first, Some(1000), 10, UNPACED, 8, now).is_none());
    assert!(split(gifts, &base(), &options, &first, Some(1000), 10, UNPACED, 1, now).is_none());
    assert!(split(gifts, &base(), &options, &first, None, 10, UNPACED, 8, now).is_none(), "no count");

    let s = split(gifts, &base(), &options, &first, Some(410), 10, UNPACED, 4, now).unwrap();
    assert_eq!(s.chains(), 4);
    let probes = s.probe_urls();
    assert_eq!(probes.len(), 3, "one probe per cut");
    for p in &probes {
        let q: Vec<(String, String)> = p.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        assert!(q.contains(&("limit".into(), "1".into())), "{p}");
        assert!(q.iter().any(|(k, v)| k == "last_modified" && v.as_str() > "2023-01-01"), "{p}");
    }
    let counts = [Some(300), Some(200), Some(100)];
    let table = s.finish(&counts).unwrap();
    assert_eq!(table.partitions.len(), 4);
    assert!(table.partitions[0].next_link.contains("sort_token"), "chain 0 continues the first page");
    for (i, c) in table.partitions.iter().enumerate().skip(1) {
        let start = table.partitions[i - 1].until.clone().unwrap();
        let url = Url::parse(&c.next_link).unwrap();
        assert!(
            url.query_pairs().any(|(k, v)| k == "last_modified" && v == start.as_str()),
            "chain {i} starts at its cut"
        );
        assert!(url.query_pairs().any(|(k, v)| k == "limit" && v == "10"));
    }
    assert!(table.partitions.last().unwrap().until.is_none(), "the last chain is open-ended");

    // The table round-trips and never reads as a plain bookmark (nor a bookmark as a table).
    let stored = table.to_json();
    assert_eq!(PartitionTable::from_json(&stored), Some(table));
    assert!(Bookmark::from_json(&stored).is_err());
    assert!(PartitionTable::from_json(&first).is_none());
}

fn page(link: &str, rows: &[(&str, &str)]) -> String {
    let value: Vec<String> = rows.iter().map(|(id, dm)| format!(r#"{{"id":"{id}","date_modified":"{dm}"}}"#)).collect();
    format!(r#"{{"count":99,"next_link":"{link}","value":[{}]}}"#, value.join(","))
}

#[test]
fn a_chain_drops_rows_past_its_end_and_stops_there_and_the_last_chain_sets_the_bookmark() {
    let gifts = find("gifts").unwrap();
    let options = SyncOptions { page_size: Some(2), ..SyncOptions::default() };
    let link = |token: &str| format!("https://api.sky.blackbaud.com/gift/v1/gifts?limit=2&sort_token={token}");
    let mut table: PartitionTable = serde_json::from_str(&format!(
        r#"{{"partitions":[
            {{"next_link":"{}","until":"2024-06-01T00:00:00Z"}},
            {{"next_link":"{}"}}]}}"#,
        link("A"),
        link("M"),
    ))
    .unwrap();
    let mut chains = table.open_chains(gifts, &base(), &options);
    assert_eq!(chains.len(), 2);

    // Chain 0: a page inside its range goes on; the page reaching the cut keeps only what is before it.
    let c0 = &mut chains[0];
    let url = c0.request_url().unwrap();
    let (rows, step) = c0
        .page(&url, &json(200, &page(&link("B"), &[("1", "2024-01-01T00:00:00Z"), ("2", "2024-02-01T00:00:00Z")])))
        .unwrap();
    assert_eq!((rows.len(), step), (2, Step::More));
    table.record(c0);
    assert_eq!(c0.request_url().unwrap().as_str(), link("B"));
    let (rows, step) = c0
        .page(&url, &json(200, &page(&link("C"), &[("3", "2024-05-31T23:59:59Z"), ("4", "2024-06-01T00:00:00Z")])))
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["3"], "a row at the cut is the next chain's");
    assert_eq!(step, Step::Done);
    table.record(c0);
    assert!(table.partitions[0].done && !table.finished());

    // A resumed run opens only the chains not done.
    let resumed = PartitionTable::from_json(&table.to_json()).unwrap();
    let open = resumed.open_chains(gifts, &base(), &options);
    assert_eq!(open.iter().map(|c| c.index()).collect::<Vec<_>>(), [1]);

    // The last chain runs to its empty page, whose link is the next run's bookmark.
    let c1 = &mut chains[1];
    let url = c1.request_url().unwrap();
    let (rows, step) = c1.page(&url, &json(200, &page(&link("N"), &[("5", "2026-01-15T11:00:00Z")]))).unwrap();
    assert_eq!((rows.len(), step), (1, Step::More), "the last chain has no end");
    table.record(c1);
    let (rows, step) = c1.page(&url, &json(200, &page(&link("O"), &[]))).unwrap();
    assert_eq!((rows.len(), step), (0, Step::Done));
    table.record(c1);
    assert!(table.finished());
    assert_eq!(
        Bookmark::from_json(&table.final_bookmark()).unwrap(),
        Bookmark::Chain { next_link: link("O"), high_water: Some("2026-01-15T11:00:00Z".into()) }
    );
    let _ = T0;
}
