//! Recipe files and checkpoint states as a careless or hostile hand edits them: many seeded
//! byte-level mutations of the shipped recipes and of a real training state, each parsed and
//! checked as `train --recipe` and `--resume` do. Nothing may panic; a mutant is either refused
//! with a message or is a valid recipe/state. (The libFuzzer targets in `fuzz/` cover the
//! runtime's formats; these formats live in host-trainer, whose burn dependency is too heavy to
//! instrument, so they are mutated here, in every test run.)

use fer_dataset::rng::Rng;
use host_trainer::checkpoint::TrainState;
use host_trainer::recipe::Recipe;

/// One mutation of `text`: a byte changed, removed, inserted or a run of it repeated, or two
/// tokens swapped, as edits and damage do.
fn mutate(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = text.to_vec();
    for _ in 0..=rng.below(3) {
        if v.is_empty() {
            v.push(b'{');
        }
        let at = rng.below(v.len());
        match rng.below(5) {
            0 => v[at] = b"{}[],:\"0123456789-.eE truefalsn\\"[rng.below(31)],
            1 => {
                v.remove(at);
            }
            2 => v.insert(at, rng.below(256) as u8),
            3 => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                let run = v[at..end].to_vec();
                v.splice(at..at, run);
            }
            _ => {
                let end = (at + 1 + rng.below(400)).min(v.len());
                v.truncate(end.max(1));
            }
        }
    }
    v
}

fn shipped_recipes() -> Vec<Vec<u8>> {
    let dir = fer_test_support::package_dir().join("recipes");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("recipes")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}

#[test]
fn mutated_recipes_are_refused_or_valid_never_a_panic() {
    let mut rng = Rng::new(36);
    let (mut refused, mut accepted) = (0usize, 0usize);
    for original in shipped_recipes() {
        for _ in 0..2_000 {
            let m = mutate(&original, &mut rng);
            let Ok(text) = std::str::from_utf8(&m) else {
                refused += 1;
                continue;
            };
            match serde_json::from_str::<Recipe>(text) {
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    // The hint for an unknown field never panics either.
                    let _ = host_trainer::recipe::check::nearest_field_hint(&e.to_string());
                    refused += 1;
                }
                Ok(recipe) => match recipe.check() {
                    Err(e) => {
                        assert!(!e.is_empty());
                        refused += 1;
                    }
                    Ok(()) => {
                        // A valid recipe plans every epoch without a panic.
                        for epoch in 0..recipe.epochs.min(200) {
                            let _ = recipe.lr_at(epoch as f64, &[]);
                            let _ = recipe.dropout_at(epoch);
                            let _ = recipe.augment_at(epoch);
                        }
                        let _ = recipe.normalize();
                        accepted += 1;
                    }
                },
            }
        }
    }
    eprintln!("recipe mutants: {refused} refused, {accepted} valid");
    assert!(refused > 1_000 && accepted > 10, "{refused} / {accepted}");
}

#[test]
fn mutated_training_states_are_refused_or_valid_never_a_panic() {
    // The published history is a checkpoint's state.json, as the run left it.
    let state = std::fs::read(fer_test_support::models_dir().join("fer_cnn.history.json"))
        .expect("published history");
    for published in ["fer_cnn.history.json", "fer_cnn_paper.history.json"] {
        let text = std::fs::read(fer_test_support::models_dir().join(published)).expect("history");
        let parsed: TrainState = serde_json::from_slice(&text).expect("the original parses");
        parsed.check().expect("a published state is valid");
    }
    let mut rng = Rng::new(37);
    let (mut refused, mut accepted) = (0usize, 0usize);
    for _ in 0..5_000 {
        let m = mutate(&state, &mut rng);
        match serde_json::from_slice::<TrainState>(&m) {
            Err(_) => refused += 1,
            Ok(mut s) => {
                // A state that passes its check is one `--resume` continues: reconciling it
                // with the current recipe must not panic either.
                if s.check().is_ok() {
                    let batches = s.train_len.div_ceil(s.recipe.batch_size);
                    let _ = host_trainer::checkpoint::reconcile(
                        &mut s,
                        &Recipe::default_recipe(),
                        batches,
                    );
                }
                accepted += 1;
            }
        }
    }
    eprintln!("state mutants: {refused} refused, {accepted} parsed");
    assert!(refused > 1_000, "{refused} / {accepted}");
}
