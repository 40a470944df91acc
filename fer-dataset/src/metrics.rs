//! Classification metrics: accuracy, the confusion matrix and the per-class report of the
//! paper's Figure 4 (precision, recall, F1, support; accuracy, macro and weighted averages),
//! as text, Markdown and JSON.

use std::fmt::Write as _;

use edge_runtime::labels::{Emotion, CLASS_COUNT};
use serde::{Deserialize, Serialize};

/// Precision, recall, F1 and support of one class (or an average).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// The whole report, as saved in `*.report.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub labels: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    pub accuracy: f64,
    pub per_class: Vec<ClassScores>,
    pub macro_avg: ClassScores,
    pub weighted_avg: ClassScores,
    pub total: usize,
    /// Per true class, the images where no face was found (end-to-end evaluation through the
    /// detector): counted in `total` and each class's support as wrong answers, in no
    /// predicted column. Empty when every image had a face.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<usize>,
}

/// Division that gives 0 for 0/0, as scikit-learn's report does (with a warning there).
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl Report {
    /// Builds the report from `(true, predicted)` class indices.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        Self::from_outcomes(pairs.into_iter().map(|(t, p)| (t, Some(p))))
    }

    /// Builds the report from `(true, predicted)` class indices where `None` is an image
    /// without an answer (no face found): wrong, and in its class's recall.
    pub fn from_outcomes(outcomes: impl IntoIterator<Item = (usize, Option<usize>)>) -> Self {
        let mut confusion = vec![vec![0usize; CLASS_COUNT]; CLASS_COUNT];
        let mut missed = vec![0usize; CLASS_COUNT];
        for (t, p) in outcomes {
            match p {
                Some(p) => confusion[t][p] += 1,
                None => missed[t] += 1,
            }
        }
        let total: usize = confusion.iter().flatten().sum::<usize>() + missed.iter().sum::<usize>();
        let correct: usize = (0..CLASS_COUNT).map(|i| confusion[i][i]).sum();
        let per_class: Vec<ClassScores> = (0..CLASS_COUNT)
            .map(|c| {
                let tp = confusion[c][c];
                let predicted: usize = (0..CLASS_COUNT).map(|t| confusion[t][c]).sum();
                let support: usize = confusion[c].iter().sum::<usize>() + missed[c];
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let k = CLASS_COUNT as f64;
        let macro_avg = ClassScores {
            precision: per_class.iter().map(|c| c.precision).sum::<f64>() / k,
            recall: per_class.iter().map(|c| c.recall).sum::<f64>() / k,
            f1: per_class.iter().map(|c| c.f1).sum::<f64>() / k,
            support: total,
        };
        let w = |f: fn(&ClassScores) -> f64| {
            per_class
                .iter()
                .map(|c| f(c) * c.support as f64)
                .sum::<f64>()
                / total.max(1) as f64
        };
        let weighted_avg = ClassScores {
            precision: w(|c| c.precision),
            recall: w(|c| c.recall),
            f1: w(|c| c.f1),
            support: total,
        };
        Report {
            labels: Emotion::ALL.iter().map(|e| e.name().to_string()).collect(),
            confusion,
            accuracy: ratio(correct, total),
            per_class,
            macro_avg,
            weighted_avg,
            total,
            missed: if missed.iter().any(|&m| m > 0) {
                missed
            } else {
                Vec::new()
            },
        }
    }

    /// Images without a face (see [`Report::missed`]).
    pub fn missed_total(&self) -> usize {
        self.missed.iter().sum()
    }

    /// The classification report as scikit-learn prints it (the paper's Figure 4).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>14} {:>9} {:>9} {:>9} {:>9}\n",
            "", "precision", "recall", "f1-score", "support"
        );
        for (name, c) in self.labels.iter().zip(&self.per_class) {
            let _ = writeln!(
                s,
                "{name:>14} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                c.precision, c.recall, c.f1, c.support
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:>14} {:>9} {:>9} {:>9.2} {:>9}",
            "accuracy", "", "", self.accuracy, self.total
        );
        for (name, c) in [
            ("macro avg", &self.macro_avg),
            ("weighted avg", &self.weighted_avg),
        ] {
            let _ = writeln!(
                s,
                "{name:>14} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                c.precision, c.recall, c.f1, c.support
            );
        }
        s
    }

    /// The confusion matrix as text (rows: true class, columns: predicted).
    pub fn confusion_text(&self) -> String {
        let mut s = format!("{:>10}", "true\\pred");
        for l in &self.labels {
            let _ = write!(s, " {:>8}", l);
        }
        if !self.missed.is_empty() {
            let _ = write!(s, " {:>8}", "no face");
        }
        s.push('\n');
        for (i, (l, row)) in self.labels.iter().zip(&self.confusion).enumerate() {
            let _ = write!(s, "{l:>10}");
            for v in row {
                let _ = write!(s, " {v:>8}");
            }
            if let Some(m) = self.missed.get(i) {
                let _ = write!(s, " {m:>8}");
            }
            s.push('\n');
        }
        s
    }

    /// Both tables as Markdown, under `title`.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = format!(
            "# {title}\n\nAccuracy: **{:.2}%** on {} images.\n\n",
            100.0 * self.accuracy,
            self.total
        );
        s.push_str(
            "| class | precision | recall | f1-score | support |\n|---|---:|---:|---:|---:|\n",
        );
        for (name, c) in self.labels.iter().zip(&self.per_class) {
            let _ = writeln!(
                s,
                "| {name} | {:.2} | {:.2} | {:.2} | {} |",
                c.precision, c.recall, c.f1, c.support
            );
        }
        let _ = writeln!(
            s,
            "| accuracy | | | {:.2} | {} |",
            self.accuracy, self.total
        );
        for (name, c) in [
            ("macro avg", &self.macro_avg),
            ("weighted avg", &self.weighted_avg),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {:.2} | {:.2} | {:.2} | {} |",
                c.precision, c.recall, c.f1, c.support
            );
        }
        s.push_str(
            "\nConfusion matrix (rows: true class, columns: predicted):\n\n| true \\ predicted |",
        );
        for l in &self.labels {
            let _ = write!(s, " {l} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(self.labels.len()));
        s.push('\n');
        for (l, row) in self.labels.iter().zip(&self.confusion) {
            let _ = write!(s, "| {l} |");
            for v in row {
                let _ = write!(s, " {v} |");
            }
            s.push('\n');
        }
        s
    }
}

/// Index of the largest score in each row of `[n, 7]` scores (first one on ties).
pub fn argmax_rows(scores: &[f32]) -> Vec<usize> {
    scores
        .chunks(CLASS_COUNT)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_hand_computed_values() {
        // class 0: 3 true, 2 predicted right, 1 predicted as class 1; class 1: 1 true, right.
        let r = Report::from_pairs([(0, 0), (0, 0), (0, 1), (1, 1)]);
        assert_eq!(r.total, 4);
        assert!((r.accuracy - 0.75).abs() < 1e-12);
        assert!((r.per_class[0].precision - 1.0).abs() < 1e-12);
        assert!((r.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.per_class[1].precision - 0.5).abs() < 1e-12);
        assert!((r.per_class[1].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.per_class[2].support, 0);
        assert_eq!(r.per_class[2].f1, 0.0);
        // weighted recall equals accuracy
        assert!((r.weighted_avg.recall - r.accuracy).abs() < 1e-12);
        assert!(r.to_text().contains("weighted avg"));
        assert!(r.to_markdown("t").contains("| disgust |"));
    }

    #[test]
    fn images_without_a_face_count_as_wrong_in_their_class() {
        // class 0: 2 right, 1 without a face; class 1: 1 right.
        let r = Report::from_outcomes([(0, Some(0)), (0, Some(0)), (0, None), (1, Some(1))]);
        assert_eq!(r.total, 4);
        assert!((r.accuracy - 0.75).abs() < 1e-12);
        assert_eq!(r.per_class[0].support, 3);
        assert!((r.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.per_class[0].precision - 1.0).abs() < 1e-12);
        assert_eq!(r.missed_total(), 1);
        assert!(r.confusion_text().contains("no face"));
        let all_found = Report::from_pairs([(0, 0), (1, 1)]);
        assert!(all_found.missed.is_empty());
        assert!(!all_found.confusion_text().contains("no face"));
        assert!(!serde_json::to_string(&all_found)
            .expect("json")
            .contains("missed"));
    }

    #[test]
    fn argmax_takes_first_maximum() {
        let s = [
            0.1, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0,
        ];
        assert_eq!(argmax_rows(&s), vec![1, 6]);
    }
}
