//! Everything only the server's console may do (`tiaki admin`, `tiaki keys`, `tiaki documents`,
//! `tiaki demo`, the background sweeps of `tiaki serve`, and the benchmarks): work that no
//! request may reach, because it acts without a principal's grant (a person at the console with
//! the data folder is beyond any check the policy could make) or hands back secrets a request
//! must never see (activation links).
//!
//! It is one type, reached only through [`App::console`], so `web/clippy.toml` bans that one
//! path and a test (the web suite's `layers::console_is_out_of_the_web_layers_reach`) fails if any of its
//! functions is named in `web`.

mod audit;
mod documents;
mod identity;
pub use identity::FirstStart;
mod practices;

use crate::App;

/// The console's use cases. Reached only through [`App::console`].
#[derive(Debug, Clone, Copy)]
pub struct Console<'a> {
    app: &'a App,
}

impl<'a> Console<'a> {
    /// The application the console acts on.
    pub(crate) const fn app(self) -> &'a App {
        self.app
    }
}

impl App {
    /// The console's use cases: never for a request (`web` may not call this).
    #[must_use]
    pub const fn console(&self) -> Console<'_> {
        Console { app: self }
    }
}
