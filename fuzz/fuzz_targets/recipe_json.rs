//! Any byte string given as a training recipe (`host-trainer train --recipe FILE`) is either
//! refused with a message or is a recipe whose whole run can be planned: no panic, no hang, no
//! unbounded allocation. A refusal for an unknown field gets its nearest-field hint, as the CLI
//! prints it.
#![no_main]

use host_trainer::recipe::check::nearest_field_hint;
use host_trainer::recipe::Recipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let recipe = match serde_json::from_str::<Recipe>(text) {
        Ok(recipe) => recipe,
        Err(e) => {
            let _ = nearest_field_hint(&e.to_string());
            return;
        }
    };
    if recipe.check().is_err() {
        return;
    }
    // A valid recipe plans every epoch (rates, dropout, augmentation) and its input rule.
    let _ = recipe.normalize();
    for epoch in 0..recipe.epochs.min(400) {
        let rate = recipe.lr_at(epoch as f64 + 0.5, &[]);
        assert!(rate.is_finite(), "learning rate {rate} at epoch {epoch}");
        let _ = recipe.dropout_at(epoch);
        let _ = recipe.augment_at(epoch);
    }
});
