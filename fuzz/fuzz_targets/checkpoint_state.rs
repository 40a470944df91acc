//! Any byte string found as a checkpoint's `state.json` (`host-trainer train --resume`) is either
//! refused with a message or is a state that a resumed run can be reconciled with, under the
//! shipped presets: no panic, no wrapped counter, no path outside the checkpoint folder.
#![no_main]

use host_trainer::checkpoint::{reconcile, TrainState};
use host_trainer::recipe::Recipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = serde_json::from_slice::<TrainState>(data) else {
        return;
    };
    if state.check().is_err() {
        return;
    }
    if let Some((model, optim)) = &state.files {
        for name in [model, optim] {
            assert!(
                !name.contains('/') && !name.contains('\\') && !name.starts_with('.'),
                "a checked state names {name:?}"
            );
        }
    }
    for preset in ["default", "paper"] {
        let recipe = Recipe::preset(preset).expect("shipped preset");
        let mut resumed = state.clone();
        let batches = resumed.train_len.div_ceil(recipe.batch_size);
        if reconcile(&mut resumed, &recipe, batches).is_ok() {
            assert!(resumed.epoch <= resumed.history.len());
            for epoch in resumed.epoch..resumed.recipe.epochs.min(resumed.epoch + 50) {
                let rate = resumed.recipe.lr_at(epoch as f64, &resumed.history);
                assert!(rate.is_finite(), "learning rate {rate} at epoch {epoch}");
            }
        }
    }
});
