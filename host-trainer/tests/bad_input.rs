//! Every bad input gets an error that names the file, line or folder and what was expected.

mod common;

use common::*;
use fer_dataset::data::{self, BadImages};

fn err(path: &std::path::Path) -> String {
    format!(
        "{:#}",
        data::load(path, BadImages::Fail).expect_err("must fail")
    )
}

#[test]
fn missing_folder() {
    let dir = temp();
    let e = err(&dir.path().join("nope"));
    assert!(e.contains("does not exist") && e.contains("nope"), "{e}");
}

#[test]
fn unknown_class_folder_lists_the_expected_names() {
    let dir = temp();
    copy_layout(dir.path(), "train", &first_images("train", 1), false, false);
    std::fs::create_dir_all(dir.path().join("train/contempt")).expect("mkdir");
    let e = err(dir.path());
    assert!(e.contains("contempt"), "{e}");
    assert!(
        e.contains("angry, disgust, fear, happy, neutral, sad, surprise"),
        "{e}"
    );
}

#[test]
fn empty_class_folder_and_missing_class() {
    let dir = temp();
    let files = first_images("train", 1);
    copy_layout(dir.path(), "train", &files, false, false);
    let sad = dir.path().join("train/sad");
    for f in std::fs::read_dir(&sad).expect("list") {
        std::fs::remove_file(f.expect("entry").path()).expect("rm");
    }
    let e = err(dir.path());
    assert!(e.contains("train/sad") && e.contains("no images"), "{e}");
    std::fs::remove_dir(&sad).expect("rmdir");
    let e = err(dir.path());
    assert!(e.contains("class 'sad' has no images"), "{e}");
}

#[test]
fn corrupt_image_is_named_and_skip_bad_counts_it() {
    let dir = temp();
    copy_layout(dir.path(), "train", &first_images("train", 2), false, false);
    let bad = dir.path().join("train/fear/broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 this is not a jpeg").expect("write");
    let e = err(dir.path());
    assert!(e.contains("broken.jpg") && e.contains("--skip-bad"), "{e}");
    let ds = data::load(dir.path(), BadImages::Skip).expect("skips");
    assert_eq!(ds.skipped.len(), 1);
    assert!(
        ds.skipped[0].contains("train/fear/broken.jpg"),
        "{:?}",
        ds.skipped
    );
    assert_eq!(ds.samples.len(), 14);
}

#[test]
fn a_truncated_jpeg_is_refused_not_guessed() {
    let dir = temp();
    let files = first_images("train", 2);
    copy_layout(dir.path(), "train", &files, false, false);
    // Cut one real face to 60% of its bytes: a decoder would fill the rest with grey.
    let (path, e) = &files[0];
    let copy = dir
        .path()
        .join("train")
        .join(e.name())
        .join(path.file_name().expect("name"));
    let bytes = std::fs::read(&copy).expect("read");
    std::fs::write(&copy, &bytes[..bytes.len() * 6 / 10]).expect("cut");
    let msg = err(dir.path());
    assert!(msg.contains("truncated JPEG"), "{msg}");
    let ds = data::load(dir.path(), BadImages::Skip).expect("skips");
    assert_eq!(ds.skipped.len(), 1, "{:?}", ds.skipped);
    assert_eq!(ds.samples.len(), 13);
}

fn csv_err(text: &str) -> String {
    let dir = temp();
    let path = dir.path().join("fer2013.csv");
    std::fs::write(&path, text).expect("write");
    err(&path)
}

#[test]
fn malformed_csv_rows_name_the_line() {
    let px = vec!["7"; 2304].join(" ");
    let good = format!("0,{px},Training\n");
    let e = csv_err("");
    assert!(e.contains("0 bytes") && e.contains("fer2013.csv"), "{e}");
    let e = csv_err("emotion,Usage\n");
    assert!(
        e.contains("line 1") && e.contains("expected columns"),
        "{e}"
    );
    let e = csv_err("foo,bar,baz\n");
    assert!(
        e.contains("line 1") && e.contains("expected columns"),
        "{e}"
    );
    let e = csv_err(&format!("emotion,pixels,Usage\n{good}9,{px},Training\n"));
    assert!(e.contains(":3:") && e.contains("emotion is '9'"), "{e}");
    let e = csv_err(&format!("emotion,pixels,Usage\n{good}1,1 2 3,Training\n"));
    assert!(
        e.contains(":3:") && e.contains("3 pixel values, expected 2304"),
        "{e}"
    );
    let e = csv_err(&format!(
        "emotion,pixels,Usage\n1,{} 300,Training\n",
        vec!["1"; 2303].join(" ")
    ));
    assert!(
        e.contains(":2:") && e.contains("pixel 2304 is '300'"),
        "{e}"
    );
    let e = csv_err(&format!("emotion,pixels,Usage\n{good}1,{px}\n"));
    assert!(
        e.contains(":3:") && e.contains("expected 3 comma-separated fields"),
        "{e}"
    );
    let e = csv_err(&format!("emotion,pixels,Usage\n0,{px},Validation\n"));
    assert!(
        e.contains(":2:") && e.contains("Usage is 'Validation'"),
        "{e}"
    );
    let e = csv_err(&format!("emotion,pixels,Usage\n{good}"));
    assert!(e.contains("class 'disgust' has no rows"), "{e}");
}

#[test]
fn cli_without_data_explains_how_to_get_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .env_remove("FER2013_DIR")
        .args(["train", "--out"])
        .arg(temp().path())
        .output()
        .expect("run host-trainer");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--data") && stderr.contains("Kaggle"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs the trainer with `args` and returns its stderr, asserting it failed without a panic.
fn trainer_fails(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(args)
        .output()
        .expect("run host-trainer");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn settings_are_checked_before_the_data_is_read() {
    let dir = temp();
    // The data folder does not exist: each error below must come before it is looked at.
    let data = dir.path().join("no-data");
    let out = dir.path().join("out");
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--epochs".as_ref(),
        "0".as_ref(),
    ]);
    assert!(e.contains("--epochs must be at least 1"), "{e}");
    // An --out below a regular file cannot be created.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let below = file.join("out");
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        below.as_os_str(),
    ]);
    assert!(e.contains("--out") && e.contains("a-file"), "{e}");
    assert!(!e.contains("no-data"), "the data was read first: {e}");
}

#[test]
fn a_recipe_file_is_checked_field_by_field_before_the_data_is_read() {
    let dir = temp();
    let data = dir.path().join("no-data");
    let out = dir.path().join("out");
    let shipped = fer_test_support::package_dir().join("recipes");
    let text = std::fs::read_to_string(shipped.join("v2-no-erasing.json")).expect("shipped recipe");
    let run = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write recipe");
        trainer_fails(&[
            "train".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--recipe".as_ref(),
            path.as_os_str(),
        ])
    };
    // The shipped recipe is valid: the run gets as far as the (missing) data.
    let e = run("ok.json", &text);
    assert!(e.contains("no-data"), "{e}");
    let e = run(
        "bad.json",
        &text.replace("\"learning_rate\": 0.001", "\"learning_rate\": -1"),
    );
    assert!(
        e.contains("bad.json") && e.contains("learning_rate is -1"),
        "{e}"
    );
    let e = run("name.json", &text.replace("v2-no-erasing", "a/b"));
    assert!(e.contains("name 'a/b'"), "{e}");
    let e = run("shape.json", "{\"name\": \"x\"}");
    assert!(
        e.contains("shape.json") && e.contains("not valid JSON"),
        "{e}"
    );
    assert!(!out.join("split.json").exists());
}

#[test]
fn a_finished_model_or_a_checkpoint_in_out_is_never_overwritten() {
    let dir = temp();
    let data = dir.path().join("no-data");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    // A published run: its weights and history, no checkpoint.
    std::fs::write(out.join("fer_cnn.bpk"), b"weights").expect("write");
    let train = |extra: &[&std::ffi::OsStr]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "train".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        args.extend_from_slice(extra);
        trainer_fails(&args)
    };
    for resume in [&[][..], &["--resume".as_ref()][..]] {
        let e = train(resume);
        assert!(
            e.contains("holds a finished model") && e.contains("--init-from"),
            "{e}"
        );
        assert!(!e.contains("no-data"), "the data was read first: {e}");
    }
    assert_eq!(
        std::fs::read(out.join("fer_cnn.bpk")).expect("read"),
        b"weights"
    );
    // --init-from must name a file.
    let missing = dir.path().join("missing.bpk");
    let other = dir.path().join("other");
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        other.as_os_str(),
        "--init-from".as_ref(),
        missing.as_os_str(),
    ]);
    assert!(e.contains("--init-from") && e.contains("not a file"), "{e}");
    // A checkpoint is continued with --resume, never restarted over.
    let ckpt = other.join("checkpoint-default");
    std::fs::create_dir_all(&ckpt).expect("ckpt");
    std::fs::write(ckpt.join("state.json"), b"{}").expect("state");
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        other.as_os_str(),
    ]);
    assert!(e.contains("already holds a checkpoint"), "{e}");
    let weights = out.join("fer_cnn.bpk");
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        other.as_os_str(),
        "--resume".as_ref(),
        "--init-from".as_ref(),
        weights.as_os_str(),
    ]);
    assert!(e.contains("--init-from starts a new run"), "{e}");
}

/// `quantize` refuses to write an int8 model that disagrees with its float model: the published
/// weights with one weight of the first dense layer at 1e30 (finite, so loading accepts it)
/// quantize to a model that agrees on almost no validation image.
#[test]
fn quantize_refuses_an_int8_model_that_disagrees_with_its_float_model() {
    use burn::module::Module;
    let models = fer_test_support::models_dir();
    let dir = temp();
    for name in ["fer_cnn.history.json", "split.json"] {
        std::fs::copy(models.join(name), dir.path().join(name)).expect("copy");
    }
    let device = host_trainer::device();
    let (mut net, _) =
        host_trainer::artifacts::load_model(&models, "fer_cnn", &device).expect("published");
    net.fc1.weight = net.fc1.weight.map(|w| {
        let one = w.clone().slice([0..1, 0..1]).ones_like() * 1e30;
        w.slice_assign([0..1, 0..1], one)
    });
    net.save_file(dir.path().join("fer_cnn.bpk")).expect("save");
    let e = trainer_fails(&[
        "quantize".as_ref(),
        "--data".as_ref(),
        fer_test_support::fer_dir().as_os_str(),
        "--out".as_ref(),
        dir.path().as_os_str(),
    ]);
    assert!(
        e.contains("agrees with the float model on only") && e.contains("--min-agreement"),
        "{e}"
    );
    assert!(!dir.path().join("fer_cnn.int8.bin").exists());
}

/// `bench` counts and batch are bounded: a huge value is refused with the range, before any
/// allocation or step.
#[test]
fn bench_refuses_counts_and_batches_out_of_range() {
    for (flag, value) in [
        ("--steps", "18446744073709551615"),
        ("--inferences", "18446744073709551615"),
        ("--batch", "100000"),
        ("--batch", "0"),
    ] {
        let e = trainer_fails(&["bench".as_ref(), flag.as_ref(), value.as_ref()]);
        assert!(
            e.contains(flag) && e.contains("expected 1 to"),
            "{flag} {value}: {e}"
        );
    }
}

/// A dangling link or a FIFO named like an image in a class folder is named (and counted with
/// `--skip-bad`), never silently dropped, and never opened (a FIFO would block).
#[cfg(unix)]
#[test]
fn links_and_fifos_named_like_images_are_named_not_dropped() {
    let dir = temp();
    copy_layout(dir.path(), "train", &first_images("train", 2), false, false);
    std::os::unix::fs::symlink(
        dir.path().join("missing.jpg"),
        dir.path().join("train/sad/dangling.jpg"),
    )
    .expect("symlink");
    let fifo = dir.path().join("train/happy/pipe.jpg");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let e = err(dir.path());
    assert!(
        (e.contains("dangling.jpg") || e.contains("pipe.jpg"))
            && e.contains("not a regular file")
            && e.contains("--skip-bad"),
        "{e}"
    );
    let ds = data::load(dir.path(), BadImages::Skip).expect("skips");
    assert_eq!(ds.skipped.len(), 2, "{:?}", ds.skipped);
    assert_eq!(ds.samples.len(), 14);
}

#[test]
fn a_missing_teacher_is_named_as_missing() {
    let dir = temp();
    let teacher = dir.path().join("missing.bpk");
    let e = trainer_fails(&[
        "teach".as_ref(),
        "--data".as_ref(),
        dir.path().as_os_str(),
        "--out".as_ref(),
        dir.path().join("out").as_os_str(),
        "--teacher".as_ref(),
        teacher.as_os_str(),
    ]);
    assert!(e.contains("missing.bpk: no such file"), "{e}");
    assert!(!e.contains("split.json"), "{e}");
}

#[test]
fn data_too_small_to_split_is_refused_before_anything_is_written() {
    let dir = temp();
    let data = dir.path().join("fer");
    // Two images per class: 70/20/10 leaves the validation part empty.
    copy_layout(&data, "train", &first_images("train", 2), false, false);
    let out = dir.path().join("out");
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--epochs".as_ref(),
        "1".as_ref(),
    ]);
    assert!(
        e.contains("validation part is empty") && e.contains("at least 10 images"),
        "{e}"
    );
    // Nothing a later run would trip on: no split.json in the folder or its base run.
    let left: Vec<_> = walk_files(&out);
    assert!(left.is_empty(), "{left:?}");
}

/// Every regular file under `dir` (none when it does not exist).
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else if p.file_name() != Some(".host-trainer.lock".as_ref()) {
            out.push(p);
        }
    }
    out
}

#[test]
fn one_class_data_names_what_is_missing_and_what_was_found() {
    let dir = temp();
    let happy: Vec<_> = first_images("train", 3)
        .into_iter()
        .filter(|(_, e)| e.name() == "happy")
        .collect();
    copy_layout(dir.path(), "train", &happy, false, false);
    let e = err(dir.path());
    assert!(
        e.contains("class 'angry' has no images") && e.contains("a folder named angry)"),
        "{e}"
    );
    assert!(e.contains("found images of happy"), "{e}");
    assert!(!e.contains("angry or angry"), "{e}");
}

#[test]
fn an_empty_part_of_a_split_manifest_is_an_error_not_zero_percent() {
    let dir = temp();
    let data = dir.path().join("fer");
    copy_layout(&data, "train", &first_images("train", 10), false, false);
    let ds = data::load(&data, BadImages::Fail).expect("load");
    let split = fer_dataset::split::stratified(ds.samples, 42);
    let mut manifest = fer_dataset::split::Manifest::new(&split, 42, "folders");
    manifest.test.clear();
    let e = format!("{:#}", manifest.part("test").expect_err("empty"));
    assert!(e.contains("test part of the split lists no images"), "{e}");
    assert!(manifest.part("validation").is_ok());
}

/// The published weights with the first value of `tensor` set to NaN, as a burnpack file.
fn weights_with_nan(tensor_prefix: &str, out: &std::path::Path) -> String {
    let bytes = std::fs::read(fer_test_support::models_dir().join("fer_cnn.bpk")).expect("read");
    let reader =
        burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes)).expect("burnpack");
    let metadata = reader.metadata().clone();
    let mut poisoned = String::new();
    let tensors: Vec<burn_pack::Tensor> = reader
        .into_tensors()
        .expect("tensors")
        .into_iter()
        .map(|t| {
            if !poisoned.is_empty()
                || !t.name.starts_with(tensor_prefix)
                || t.dtype != burn_pack::DType::F32
            {
                return t;
            }
            poisoned = t.name.clone();
            let (name, dtype, shape, id, data) = t.into_parts().expect("parts");
            let mut data = data.to_vec();
            data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            burn_pack::Tensor::new(
                name,
                dtype,
                shape,
                id,
                burn_pack::Bytes::from_bytes_vec(data),
            )
        })
        .collect();
    assert!(!poisoned.is_empty(), "no tensor named {tensor_prefix}*");
    let mut writer = burn_pack::Writer::new(tensors);
    for (k, v) in &metadata {
        writer = writer.with_metadata(k, v);
    }
    std::fs::write(out, writer.into_bytes().expect("write").to_vec()).expect("write");
    poisoned
}

#[test]
fn nan_weights_are_named_by_layer_before_training() {
    let dir = temp();
    let data = dir.path().join("fer");
    copy_layout(&data, "train", &first_images("train", 10), false, false);
    let nan = dir.path().join("nan.bpk");
    let poisoned = weights_with_nan("blocks.2", &nan);
    let e = trainer_fails(&[
        "train".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        dir.path().join("out").as_os_str(),
        "--epochs".as_ref(),
        "1".as_ref(),
        "--init-from".as_ref(),
        nan.as_os_str(),
    ]);
    assert!(
        e.contains("nan.bpk: cannot train from these weights")
            && e.contains("block 3 holds a NaN or infinite parameter"),
        "{poisoned}: {e}"
    );
    assert!(!e.contains("loss became NaN"), "{e}");
}
