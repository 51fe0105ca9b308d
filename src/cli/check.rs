//! `recon check SPEC [--connect]`: validate and describe; with `--connect`,
//! also reach each side like a vendor's "verify connection" button.

use std::path::Path;

use anyhow::bail;

use super::{Outcome, load};
use crate::connect;
use crate::ui::Progress;

pub fn run(path: &Path, connect: bool, ui: &Progress) -> anyhow::Result<Outcome> {
    let spec = load(path)?;
    ui.say(format!("{} is valid.", path.display()));
    ui.say(spec.describe());
    if connect {
        let mut failed = Vec::new();
        for side in &spec.sides {
            match connect::verify(side) {
                Ok(detail) => ui.say(format!("  {}: ok, {detail}", side.name)),
                Err(e) => {
                    ui.say(format!("  {}: FAILED, {e}", side.name));
                    failed.push(side.name.clone());
                }
            }
        }
        if !failed.is_empty() {
            bail!("cannot reach side(s) {}", failed.join(", "));
        }
    }
    Ok(Outcome::InSync)
}
