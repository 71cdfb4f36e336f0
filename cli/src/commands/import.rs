//! `skysync import`: a token bundle from the consent page into the store.

use std::io::Read;

use anyhow::Context as _;
use skysync_core::bundle::{BundleContent, MAX_BUNDLE_BYTES, TokenBundle};
use skysync_core::env::{Clock, SystemClock};
use skysync_core::store::TokenStore;

use crate::args::ImportArgs;
use crate::commands::login::print_consent;
use crate::context::Context;
use crate::exit;
use crate::login::{Replace, exchange_and_replace, store_tokens};

/// Validates the bundle against the configured client and stores it (exchanging a code at once).
pub async fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    let limit = MAX_BUNDLE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if args.file == "-" {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            ctx.output().note("Paste the token bundle, then press Ctrl-D (or pass the file: `skysync import FILE`).");
        }
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes).context("reading the bundle from stdin")?;
    } else {
        std::fs::File::open(&args.file)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("reading the bundle {}", args.file))?;
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        anyhow::bail!(
            "the bundle is empty; pass the file the consent page downloaded (`skysync import FILE`) or pipe it to `skysync import -`"
        );
    }
    let bundle = TokenBundle::parse(&bytes)?;
    bundle.validate(&ctx.settings().client_id, SystemClock.now())?;
    let replace = if args.force { Replace::Always } else { Replace::SameEnvironment };
    let tokens = match bundle.content {
        BundleContent::RefreshToken { tokens } => {
            let store = ctx.store();
            let _lock = store.lock().await?;
            store_tokens(ctx, &tokens, replace).await?;
            *tokens
        }
        BundleContent::AuthorizationCode { code, code_verifier, redirect_uri, .. } => {
            exchange_and_replace(ctx, code, Some(code_verifier), &redirect_uri, replace).await?
        }
    };
    print_consent(ctx, &tokens, "Imported")?;
    Ok(exit::OK)
}
