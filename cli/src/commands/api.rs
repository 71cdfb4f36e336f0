//! `skysync api`: an authenticated SKY API call, printing the JSON.

use std::io::Read;

use anyhow::Context as _;
use skysync_core::api::json_body;
use skysync_core::http::Method;
use skysync_core::sync::{filters_of, parse_page, restore_filters};

use crate::args::ApiArgs;
use crate::context::Context;
use crate::exit;

/// Pages followed at most with `--paginate` (a loop guard; a full list is far shorter).
const MAX_PAGES: usize = 100_000;

/// Sends the call; with `--paginate`, follows `next_link` printing one record per line.
pub async fn run(ctx: &Context, args: ApiArgs) -> anyhow::Result<u8> {
    let method = Method::parse(&args.method).context("unknown HTTP method")?;
    let body = match &args.data {
        None => None,
        Some(d) => {
            let text = if let Some(path) = d.strip_prefix('@') {
                let mut s = String::new();
                if path == "-" {
                    std::io::stdin().read_to_string(&mut s).context("reading --data from stdin")?;
                } else {
                    s = std::fs::read_to_string(path).with_context(|| format!("reading --data file {path}"))?;
                }
                s
            } else {
                d.clone()
            };
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| crate::exit::UsageError(format!("--data is not valid JSON: {e}")))?;
            Some(value.to_string().into_bytes())
        }
    };
    let client = ctx.api_client(0.0, None)?;
    let out = ctx.output();
    if !args.paginate {
        let response = client.send(method, &args.path, body).await?;
        let value = json_body(&response, &args.path)?;
        if !value.is_null() {
            out.json_value(&value)?;
        }
        return Ok(exit::OK);
    }
    anyhow::ensure!(method == Method::Get && body.is_none(), "--paginate works with GET requests only");
    let mut next = args.path.clone();
    // Blackbaud's documented `next_link` carries only the cursor: the first request's filters
    // (`include_inactive`, `fields`, …) are added back to every page, as the sync does.
    let filters = filters_of(&client.resolve(&next)?);
    for _ in 0..MAX_PAGES {
        let url = client.resolve(&restore_filters(&next, &filters))?;
        let response = client.send(Method::Get, url.as_str(), None).await?;
        let page = parse_page(&url, &response)?;
        for record in &page.value {
            out.line(record.get())?;
        }
        match page.next_link {
            // A `sort_token` list keeps offering a next_link; an empty page is its end.
            Some(link) if !page.value.is_empty() => next = link,
            _ => return Ok(exit::OK),
        }
    }
    anyhow::bail!("stopped after {MAX_PAGES} pages")
}
