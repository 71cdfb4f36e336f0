//! `skysync views`: the SQL of the reporting views, for people who materialise them elsewhere
//! (dbt, a warehouse), and their column reference (`docs/VIEWS.md` is this command's
//! `--markdown` output). Needs no profile: the views come from the specs built into the binary.

use std::io::Write as _;

use clap::{Args, ValueEnum};
use skysync_core::catalog;
use skysync_core::sync::columns::{self, ViewSpec, ddl, markdown};

/// Which database's SQL to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ViewsDb {
    /// SQLite (`json_extract`, `json_each`).
    Sqlite,
    /// PostgreSQL (`jsonb`).
    Postgres,
}

/// `skysync views`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Every sync creates these views itself (over the tables that exist), so this is only needed to
materialise them elsewhere. EXAMPLES:
  skysync views                          every view, SQLite SQL
  skysync views --db postgres gifts      the gift views (v_gifts, v_gift_splits, ...) for PostgreSQL
  skysync views --markdown > VIEWS.md    the column reference")]
pub struct ViewsArgs {
    /// The database whose SQL to print.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub db: ViewsDb,
    /// Print the column reference (Markdown) instead of SQL.
    #[arg(long)]
    pub markdown: bool,
    /// Only the views over these entities (catalog names, see `skysync sync --list`).
    #[arg(value_name = "ENTITY")]
    pub entities: Vec<String>,
}

/// Prints the views' SQL or reference to stdout.
pub fn run(args: &ViewsArgs) -> anyhow::Result<u8> {
    let specs = selected(&args.entities)?;
    let text = if args.markdown {
        markdown::reference(specs)
    } else {
        let dialect = match args.db {
            ViewsDb::Sqlite => ddl::Dialect::Sqlite,
            ViewsDb::Postgres => ddl::Dialect::Postgres,
        };
        ddl::script(specs, dialect)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(crate::exit::OK)
}

/// The views over `entities` (all views when none is named), in reference order.
fn selected(entities: &[String]) -> anyhow::Result<Vec<&'static ViewSpec>> {
    let mut names = Vec::new();
    for raw in entities {
        let e = catalog::find(raw).ok_or_else(|| {
            crate::exit::UsageError(format!("unknown entity {raw:?}: see `skysync sync --list` for the catalog"))
        })?;
        names.push(e.name);
    }
    Ok(columns::all().filter(|v| names.is_empty() || names.contains(&v.entity)).collect())
}
