//! Rung 4 (host part): golden vectors. A few real test faces and the exact int8 logits of the
//! published model; the firmware (QEMU) and the aarch64 build are checked against the same file.
//! `UPDATE_GOLDEN=1 cargo test -p fer-checks --test golden` rewrites them after a new model.

use edge_runtime::Model;
use fer_checks::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Golden {
    /// Test-split files, in the order of `golden.inputs.bin` (2304 pixels each).
    files: Vec<String>,
    labels: Vec<String>,
    logits: Vec<[i8; 7]>,
    predicted: Vec<String>,
}

const COUNT: usize = 8;

#[test]
fn published_model_gives_the_golden_logits() {
    let file = artifact("fer_cnn.int8.bin");
    let model = Model::from_bytes(&file).expect("valid model");
    let mut arena = vec![0i8; model.arena_size()];
    let dir = models_dir().join("golden");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // One face per class plus one more, from the test split.
        let samples = test_split();
        let mut picked = Vec::new();
        for e in edge_runtime::Emotion::ALL {
            picked.extend(samples.iter().filter(|s| s.label == e).nth(3));
        }
        picked.extend(samples.iter().rev().take(COUNT - picked.len()));
        let mut inputs = Vec::new();
        let mut g = Golden {
            files: vec![],
            labels: vec![],
            logits: vec![],
            predicted: vec![],
        };
        for s in picked {
            let l = model.run(&s.pixels[..], &mut arena).expect("inference");
            inputs.extend_from_slice(&s.pixels[..]);
            g.files.push(s.id.clone());
            g.labels.push(s.label.name().into());
            g.logits.push(l.0);
            g.predicted.push(l.argmax().name().into());
        }
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("inputs.bin"), inputs).expect("write inputs");
        std::fs::write(
            dir.join("logits.json"),
            serde_json::to_string_pretty(&g).expect("json") + "\n",
        )
        .expect("write");
    }
    let inputs = std::fs::read(dir.join("inputs.bin")).expect("models/golden/inputs.bin");
    let g: Golden =
        serde_json::from_slice(&std::fs::read(dir.join("logits.json")).expect("logits.json"))
            .expect("json");
    assert_eq!(g.files.len(), COUNT);
    assert_eq!(inputs.len(), COUNT * 2304);
    // The inputs are the test images they claim to be.
    let ids: Vec<_> = g
        .files
        .iter()
        .zip(&g.labels)
        .map(|(f, l)| {
            (
                f.clone(),
                edge_runtime::Emotion::from_folder_name(l).expect("label"),
            )
        })
        .collect();
    let faces = host_trainer::data::load_ids(&fer_dir(), &ids).expect("golden faces");
    for (i, face) in faces.iter().enumerate() {
        assert_eq!(
            &face.pixels[..],
            &inputs[i * 2304..(i + 1) * 2304],
            "{}",
            g.files[i]
        );
        let l = model
            .run(&inputs[i * 2304..(i + 1) * 2304], &mut arena)
            .expect("inference");
        assert_eq!(l.0, g.logits[i], "logits of {}", g.files[i]);
        assert_eq!(l.argmax().name(), g.predicted[i]);
    }
}
