//! `recon check SPEC`: validate and describe.

use std::path::Path;

use super::{Outcome, load};
use crate::ui::Progress;

pub fn run(path: &Path, ui: &Progress) -> anyhow::Result<Outcome> {
    let spec = load(path)?;
    ui.say(format!("{} is valid.", path.display()));
    ui.say(spec.describe());
    Ok(Outcome::InSync)
}
