mod engine;

use clap::Parser;
use skysync_core::sync::Bookmark;

use super::status::describe_bookmark;
use super::{SyncCommand, select_entities};
use crate::args::{Cli, Command};

fn sync_args(argv: &[&str]) -> super::SyncArgs {
    let mut full = vec!["skysync", "sync"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).unwrap().command {
        Command::Sync(a) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_is_a_subcommand_and_entities_are_positional() {
    let a = sync_args(&["status", "--db", "x.db"]);
    assert!(matches!(a.command, Some(SyncCommand::Status(ref s)) if s.db.as_deref() == Some("x.db")));
    let a = sync_args(&["gifts", "constituents", "--full", "--page-size", "50", "--call-budget", "9"]);
    assert!(a.command.is_none());
    assert_eq!(a.entities, ["gifts", "constituents"]);
    assert!(a.full && !a.reconcile);
    assert_eq!((a.page_size, a.call_budget), (Some(50), Some(9)));
    let a = sync_args(&["--list"]);
    assert!(a.list && a.entities.is_empty());
}

#[test]
fn entities_come_from_the_command_line_then_config_then_defaults() {
    let names = |v: Vec<&skysync_core::catalog::Entity>| v.iter().map(|e| e.name).collect::<Vec<_>>();
    assert_eq!(names(select_entities(&[], &[]).unwrap()), ["constituents", "gifts"]);
    assert_eq!(names(select_entities(&[], &["funds".into()]).unwrap()), ["funds"]);
    assert_eq!(
        names(select_entities(&["Email-Addresses".into(), "gifts".into()], &["funds".into()]).unwrap()),
        ["email_addresses", "gifts"]
    );
    assert_eq!(
        select_entities(&["all".into(), "gifts".into()], &[]).unwrap().len(),
        skysync_core::catalog::CATALOG.len()
    );
    let err = select_entities(&["giftz".into()], &[]).unwrap_err();
    assert!(err.to_string().contains("--list"));
}

#[test]
fn bookmarks_are_described_without_urls() {
    let chain = Bookmark::Chain {
        next_link: "https://api.sky.blackbaud.com/gift/v1/gifts?limit=5000&last_modified=1600-01-01T00%3a00%3a00Z&sort_token=AAAAAAAC%2bI4%3d".into(),
        high_water: Some("2024-05-01T10:00:00+00:00".into()),
    };
    let text = describe_bookmark(Some(&chain.to_json()));
    assert!(text.contains("1600-01-01T00:00:00Z") && text.contains("sort_token held"), "{text}");
    assert!(!text.contains("https://") && !text.contains("AAAA"), "{text}");
    let done = Bookmark::Done { since: Some("2024-05-01T09:30:00Z".into()), high_water: None };
    assert!(describe_bookmark(Some(&done.to_json())).contains("since 2024-05-01T09:30:00Z"));
    assert!(describe_bookmark(None).contains("beginning"));
}

#[test]
fn the_catalog_listing_names_every_entity_and_the_full_scan_ones() {
    let text = super::list::render();
    for e in skysync_core::catalog::CATALOG {
        assert!(text.contains(e.name) && text.contains(e.path), "{}", e.name);
    }
    assert!(text.contains("no sort_token"), "events say how they are kept current");
}
