//! "Did you mean …?" for names typed by hand: entity names, config keys.

/// The candidate closest to `typed` (Jaro-Winkler, case-insensitive), when it is close enough
/// to be what was meant.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&typed, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn a_typo_finds_the_name_and_nonsense_finds_nothing() {
        let names = ["constituents", "gifts", "funds", "constituent_codes"];
        assert_eq!(nearest("constituens", names), Some("constituents"));
        assert_eq!(nearest("Gifs", names), Some("gifts"));
        assert_eq!(nearest("zzzz", names), None);
    }
}
