mod engine;

use skysync_core::sync::Bookmark;

use super::status::describe_bookmark;

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
