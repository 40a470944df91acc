//! The field-by-field check of a recipe read from a file.

use super::{Optimizer, Recipe, Schedule};

impl Recipe {
    /// Checks every field of a recipe read from a file; the message names the field and what it
    /// must be.
    ///
    /// # Errors
    /// The first field out of its range.
    pub fn check(&self) -> Result<(), String> {
        self.check_fields(true)
    }

    /// The same check for the recipe a checkpoint recorded: a run's epoch count may have been
    /// set on the command line below what the recipe's warm-up or averaging spans (`--epochs 1`
    /// on a preset), which a run accepts; every other rule holds.
    ///
    /// # Errors
    /// The first field out of its range.
    pub fn check_recorded(&self) -> Result<(), String> {
        self.check_fields(false)
    }

    fn check_fields(&self, within_epochs: bool) -> Result<(), String> {
        let span = if within_epochs {
            self.epochs as f64
        } else {
            1e6
        };
        fn within(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{field} is {v}, expected a number from {lo} to {hi}"
                ))
            }
        }
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!(
                "name '{}' must be 1-64 letters, digits, '-' or '_' (it names the run's files)",
                self.name
            ));
        }
        if self.epochs == 0 || self.batch_size == 0 || self.batch_size > 4096 {
            return Err(format!(
                "epochs {} and batch_size {}: expected at least one epoch and a batch of 1-4096",
                self.epochs, self.batch_size
            ));
        }
        if self.patience == 0 {
            return Err("patience must be at least 1".into());
        }
        within("learning_rate", self.learning_rate, 1e-9, 10.0)?;
        self.normalize()?;
        if let Schedule::Cosine {
            warmup_epochs,
            final_fraction,
            restarts,
        } = &self.schedule
        {
            within("schedule.warmup_epochs", *warmup_epochs, 0.0, span)?;
            within("schedule.final_fraction", *final_fraction, 0.0, 1.0)?;
            if restarts.windows(2).any(|w| w[0] >= w[1]) || restarts.first() == Some(&0) {
                return Err(format!(
                    "schedule.restarts {restarts:?}: expected ascending epochs above 0"
                ));
            }
        }
        if let Schedule::Plateau {
            warmup_epochs,
            factor,
            patience,
            min_fraction,
        } = self.schedule
        {
            within("schedule.warmup_epochs", warmup_epochs, 0.0, span)?;
            within("schedule.factor", factor, 0.01, 0.99)?;
            within("schedule.min_fraction", min_fraction, 0.0, 1.0)?;
            if patience == 0 || patience >= self.patience {
                return Err(format!(
                    "schedule.patience {patience}: expected at least 1 and fewer epochs than the \
                     early-stopping patience {} (or the rate is never reduced before the run stops)",
                    self.patience
                ));
            }
        }
        if let Optimizer::Sgd {
            momentum,
            weight_decay,
            ..
        } = self.optimizer
        {
            within("optimizer.momentum", momentum, 0.0, 0.999)?;
            within("optimizer.weight_decay", weight_decay, 0.0, 1.0)?;
        }
        within("label_smoothing", self.label_smoothing, 0.0, 0.99)?;
        within("class_balance", self.class_balance, 0.0, 1.0)?;
        within("dropout.block", self.dropout.block, 0.0, 0.99)?;
        within("dropout.head", self.dropout.head, 0.0, 0.99)?;
        if let Some(head) = self.last_cycle_head_dropout {
            within("last_cycle_head_dropout", head, 0.0, 0.99)?;
        }
        if self.max_shift > 24 {
            return Err(format!(
                "max_shift {} is more than half the 48-pixel image",
                self.max_shift
            ));
        }
        if let Some(d) = &self.distort {
            within("distort.rotate_deg", d.rotate_deg, 0.0, 180.0)?;
            within("distort.zoom", d.zoom, 0.0, 0.9)?;
            within("distort.shift", d.shift, 0.0, 24.0)?;
            within("distort.contrast", d.contrast, 0.0, 1.0)?;
            within("distort.brightness", d.brightness, 0.0, 1.0)?;
            within("distort.erase_p", d.erase_p, 0.0, 1.0)?;
            within("distort.erase_area.0", d.erase_area.0, 0.0, 1.0)?;
            within("distort.erase_area.1", d.erase_area.1, d.erase_area.0, 1.0)?;
        }
        if let Some(c) = &self.camera {
            within("camera.blur_p", c.blur_p, 0.0, 1.0)?;
            within("camera.lowres_p", c.lowres_p, 0.0, 1.0)?;
            within("camera.noise", c.noise, 0.0, 64.0)?;
            within("camera.jpeg_p", c.jpeg_p, 0.0, 1.0)?;
            let (lo, hi) = c.lowres_side;
            if !(8 <= lo && lo <= hi && hi <= 47) {
                return Err(format!(
                    "camera.lowres_side ({lo}, {hi}): expected 8 <= low <= high <= 47 pixels"
                ));
            }
            let (lo, hi) = c.jpeg_quality;
            if !(5 <= lo && lo <= hi && hi <= 100) {
                return Err(format!(
                    "camera.jpeg_quality ({lo}, {hi}): expected 5 <= low <= high <= 100"
                ));
            }
        }
        if let Some(d) = &self.distill {
            within("distill.weight", d.weight, 0.0, 1.0)?;
            within("distill.temperature", d.temperature, 0.5, 20.0)?;
        }
        if let Some(crate::recipe::QuantAware {
            ranges: crate::int8_grid::RangeMethod::Percentile { low, high },
        }) = self.quant_aware
        {
            within("quant_aware.ranges.low", low, 0.0, 50.0)?;
            within("quant_aware.ranges.high", high, low.max(50.0), 100.0)?;
        }
        if within_epochs && self.average_last > self.epochs {
            return Err(format!(
                "average_last {} is more than the {} epochs",
                self.average_last, self.epochs
            ));
        }
        if let Some(finish) = &self.finish {
            if finish.finish.is_some() {
                return Err(
                    "finish.finish: a finishing run cannot have a finish of its own".into(),
                );
            }
            finish.check().map_err(|e| format!("finish.{e}"))?;
        }
        Ok(())
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`, ..." (or "expected `a` or `b`"):
/// the known field nearest to `x` by edit distance, as a hint to append to the error.
pub fn nearest_field_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split("expected").nth(1)?;
    let expected = expected.split(" at line").next().unwrap_or(expected);
    let nearest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (edit_distance(unknown, known), known))
        .min()?;
    (nearest.0 <= unknown.len().max(3) / 2 + 1).then(|| format!("did you mean `{}`?", nearest.1))
}

/// Levenshtein distance between two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::schedule::tests::plateau;
    use super::*;

    #[test]
    fn presets_pass_their_check_and_bad_fields_are_named() {
        for name in Recipe::PRESETS {
            assert_eq!(Recipe::preset(name).unwrap().check(), Ok(()), "{name}");
        }
        let mut r = Recipe::v2();
        r.name = "../x".into();
        assert!(r.check().unwrap_err().contains("name '../x'"));
        let mut r = Recipe::v2();
        r.learning_rate = f64::NAN;
        assert!(r.check().unwrap_err().contains("learning_rate is NaN"));
        let mut r = Recipe::v2();
        r.distort.as_mut().unwrap().erase_area = (0.3, 0.1);
        assert!(r.check().unwrap_err().contains("distort.erase_area.1"));
        let mut r = Recipe::v2();
        r.optimizer = Optimizer::Sgd {
            momentum: 1.5,
            nesterov: true,
            weight_decay: 5e-4,
        };
        assert!(r.check().unwrap_err().contains("optimizer.momentum is 1.5"));
        let mut r = Recipe::v2();
        r.class_balance = 1.5;
        assert!(r.check().unwrap_err().contains("class_balance is 1.5"));
        let mut r = Recipe::v2();
        r.schedule = plateau(1.5, 5, 0.01);
        assert!(r.check().unwrap_err().contains("schedule.factor is 1.5"));
        r.schedule = plateau(0.5, 40, 0.01);
        assert!(r.check().unwrap_err().contains("schedule.patience 40"));
        let mut r = Recipe::default_recipe();
        r.finish.as_mut().unwrap().learning_rate = -1.0;
        assert!(r
            .check()
            .unwrap_err()
            .contains("finish.learning_rate is -1"));
        let mut r = Recipe::default_recipe();
        r.finish.as_mut().unwrap().finish = Some(Box::new(Recipe::paper()));
        assert!(r.check().unwrap_err().contains("finish.finish"));
    }

    /// Every recipe file shipped in host-trainer/recipes/ reads, passes its check, and is named
    /// after its file.
    #[test]
    fn the_shipped_recipe_files_are_valid() {
        let dir = fer_test_support::package_dir().join("recipes");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("recipes/") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let r: Recipe =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(r.check(), Ok(()), "{}", path.display());
            assert_eq!(
                Some(r.name.as_str()),
                path.file_stem().and_then(|s| s.to_str())
            );
            n += 1;
        }
        assert!(n >= 3, "{n} recipe files");
    }
}

#[cfg(test)]
mod unknown_field_tests {
    use super::*;
    use crate::recipe::Recipe;

    fn parse(text: &str) -> String {
        let e = serde_json::from_str::<Recipe>(text).expect_err("must be refused");
        let msg = e.to_string();
        match nearest_field_hint(&msg) {
            Some(hint) => format!("{msg} ({hint})"),
            None => msg,
        }
    }

    /// The `v3` recipe file with `from` replaced by `to` (once).
    fn v3_with(from: &str, to: &str) -> String {
        let text = include_str!("../../recipes/v3.json");
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1)
    }

    #[test]
    fn unknown_fields_at_any_depth_are_refused_with_the_nearest_known_one() {
        let top = |name: &str| format!("\"{name}\": null, \"label_smoothing\"");
        // (text replaced in v3.json, its replacement, the unknown field, the known one).
        let cases = [
            (
                "\"label_smoothing\"",
                top("quant_awre"),
                "quant_awre",
                "quant_aware",
            ),
            (
                "\"label_smoothing\"",
                top("optimiser"),
                "optimiser",
                "optimizer",
            ),
            ("\"label_smoothing\"", top("distil"), "distil", "distill"),
            // Nested: inside `distort`, `dropout` and the schedule.
            (
                "\"rotate_deg\"",
                "\"rotate_degs\"".into(),
                "rotate_degs",
                "rotate_deg",
            ),
            ("\"head\"", "\"heads\"".into(), "heads", "head"),
            (
                "\"final_fraction\"",
                "\"final_fractoin\"".into(),
                "final_fractoin",
                "final_fraction",
            ),
        ];
        for (from, to, unknown, known) in cases {
            let e = parse(&v3_with(from, &to));
            assert!(
                e.contains(&format!("unknown field `{unknown}`"))
                    && e.contains(&format!("did you mean `{known}`?")),
                "{e}"
            );
        }
        // The file itself parses.
        serde_json::from_str::<Recipe>(include_str!("../../recipes/v3.json")).expect("v3.json");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("distil", "distill"), 1);
        assert_eq!(edit_distance("optimiser", "optimizer"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            nearest_field_hint("unknown field `zzzzzzzzzz`, expected `name` or `seed`"),
            None
        );
    }
}
