//! The command line on real FER-2013 faces and on bad input.

use fer_test_support::fer_dir;
use std::path::PathBuf;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-cli"))
        .args(args)
        .output()
        .expect("run edge-cli")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn first_files(class: &str, n: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fer_dir().join("test").join(class))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v.truncate(n);
    v
}

#[test]
fn classify_prints_one_json_object_per_face() {
    let files = first_files("happy", 3);
    let mut args = vec!["classify", "--json"];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = cli(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    for (l, name) in lines.iter().zip(&names) {
        assert_eq!(l["file"], name.as_str());
        assert_eq!(l["box"]["w"], 48);
        let label = l["label"].as_str().expect("label");
        assert!(edge_runtime::Emotion::from_folder_name(label).is_some());
        let c = l["confidence"].as_f64().expect("confidence");
        assert!(c > 1.0 / 7.0 - 1e-6 && c <= 1.0);
        assert_eq!(l["top3"][0][0], label);
    }
}

#[test]
fn bad_inputs_are_named_and_the_rest_still_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let not_image = dir.path().join("notes.txt.png");
    std::fs::write(&not_image, "hello").expect("write");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let good = first_files("sad", 1).remove(0);
    let out = cli(&[
        "classify",
        "/no/such/face.jpg",
        not_image.to_str().expect("utf8"),
        empty.to_str().expect("utf8"),
        good.to_str().expect("utf8"),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/no/such/face.jpg: cannot read file"), "{err}");
    assert!(err.contains("notes.txt.png: not an image"), "{err}");
    assert!(err.contains("empty: folder holds no images"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(text(&out.stdout).contains(good.file_name().expect("name").to_str().expect("utf8")));
}

#[test]
fn an_invalid_model_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("model.bin");
    std::fs::write(&model, b"FERQ\x01\x00\x00\x00garbage").expect("write");
    let out = cli(&[
        "--model",
        model.to_str().expect("utf8"),
        "classify",
        "x.jpg",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("model.bin is not a valid int8 model") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn eval_reports_accuracy_on_a_labelled_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    for class in [
        "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
    ] {
        let d = dir.path().join(class);
        std::fs::create_dir(&d).expect("mkdir");
        for f in first_files(class, 5) {
            std::fs::copy(&f, d.join(f.file_name().expect("name"))).expect("copy");
        }
    }
    let out = cli(&[
        "eval",
        "--data",
        dir.path().to_str().expect("utf8"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["total"], 35);
    let acc = r["accuracy"].as_f64().expect("accuracy");
    assert!((0.0..=1.0).contains(&acc));
    let confusion: u64 = r["confusion"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_u64().expect("n"))
        })
        .sum();
    assert_eq!(confusion, 35);
    // Flip test-time augmentation: every image still counted once; printed as such.
    let mirrored = cli(&[
        "eval",
        "--data",
        dir.path().to_str().expect("utf8"),
        "--mirror",
    ]);
    assert!(mirrored.status.success(), "{}", text(&mirrored.stderr));
    assert!(
        text(&mirrored.stdout).contains("int8 model with its mirror images on 35 images"),
        "{}",
        text(&mirrored.stdout)
    );
}

#[test]
fn classify_with_mirror_gives_one_label_per_face_and_tract_refuses_it() {
    let files: Vec<String> = first_files("surprise", 4)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["classify", "--json", "--mirror"];
    args.extend(files.iter().map(String::as_str));
    let out = cli(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    for l in &lines {
        let top = l["top3"][0][0].as_str().expect("top class");
        assert_eq!(l["label"].as_str(), Some(top), "{l}");
        let c = l["confidence"].as_f64().expect("confidence");
        assert!((0.0..=1.0).contains(&c));
    }
    let out = cli(&["classify", "--engine", "tract", "--mirror", &files[0]]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--mirror is an option of the int8 engine"));
}

#[test]
fn tract_engine_agrees_with_int8_on_real_faces() {
    let files: Vec<String> = ["happy", "surprise", "neutral"]
        .iter()
        .flat_map(|c| first_files(c, 10))
        .map(|p| p.display().to_string())
        .collect();
    let run = |engine: &str| -> Vec<serde_json::Value> {
        let mut args = vec!["classify", "--json", "--engine", engine];
        args.extend(files.iter().map(String::as_str));
        let out = cli(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let (int8, float) = (run("int8"), run("tract"));
    assert_eq!(int8.len(), 30);
    assert_eq!(float.len(), 30);
    assert!(float.iter().all(|v| v.get("logits").is_none()));
    let same = int8
        .iter()
        .zip(&float)
        .filter(|(a, b)| a["label"] == b["label"])
        .count();
    // The published model agrees on 98.3% of the test split; 30 faces allow at most a couple of flips.
    assert!(
        same >= 27,
        "int8 and float agree on only {same} of 30 faces"
    );
}

#[test]
fn faces_are_found_in_a_real_photo_and_a_photo_without_one_is_named() {
    let photos = fer_test_support::photos_dir();
    let astronaut = photos.join("astronaut.jpg").display().to_string();
    let grass = photos.join("grass.jpg").display().to_string();
    let out = cli(&[
        "classify",
        "--json",
        "--detector",
        "lbp",
        &astronaut,
        &grass,
    ]);
    assert!(
        !out.status.success(),
        "a photo without a face makes the exit code 1"
    );
    let err = text(&out.stderr);
    assert!(err.contains("grass.jpg: no face found"), "{err}");
    let faces: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    // Her face (OpenCV's box (173, 66, 98, 98), grown by the 10% crop margin), detected.
    let face = faces
        .iter()
        .find(|f| {
            let b = &f["box"];
            (b["x"].as_u64().unwrap() as i64 - 165).abs() <= 8
                && (b["y"].as_u64().unwrap() as i64 - 58).abs() <= 8
        })
        .unwrap_or_else(|| panic!("no face near (165, 58): {faces:?}"));
    assert_eq!(face["source"], "detected");
}

/// `--detector cnn`: the CNN detector finds her face alone (the cascade also reports a second,
/// false face), nothing in the grass; a cascade file given with it is refused by name.
#[test]
fn the_cnn_detector_finds_the_face_in_a_real_photo() {
    let photos = fer_test_support::photos_dir();
    let astronaut = photos.join("astronaut.jpg").display().to_string();
    let grass = photos.join("grass.jpg").display().to_string();
    let out = cli(&[
        "classify",
        "--json",
        "--detector",
        "cnn",
        &astronaut,
        &grass,
    ]);
    assert!(
        !out.status.success(),
        "a photo without a face makes the exit code 1"
    );
    let err = text(&out.stderr);
    assert!(err.contains("grass.jpg: no face found"), "{err}");
    let faces: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let b = &faces[0]["box"];
    let (x, y, side) = (
        b["x"].as_i64().unwrap(),
        b["y"].as_i64().unwrap(),
        b["w"].as_i64().unwrap(),
    );
    // OpenCV's box for her face is (173, 66, 98, 98): the square must hold most of it.
    assert!(
        x <= 185 && y <= 80 && x + side >= 260 && y + side >= 150,
        "{faces:?}"
    );
    assert_eq!(faces[0]["source"], "detected");
    let out = cli(&[
        "classify",
        "--detector",
        "cnn",
        "--cascade",
        &grass,
        &astronaut,
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("grass.jpg is an LBP cascade file: it goes with --detector lbp"),
        "{err}"
    );
}

#[test]
fn a_bad_cascade_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.cascade");
    std::fs::write(&bad, b"FERC garbage").expect("write");
    let face = first_files("happy", 1)[0].display().to_string();
    let out = cli(&["classify", "--cascade", &bad.display().to_string(), &face]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.cascade is not a valid face cascade"),
        "{err}"
    );
}

#[test]
fn a_text_file_given_as_cascade_or_onnx_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, b"hello").expect("write");
    let face = first_files("happy", 1)[0].display().to_string();
    let path = text_file.display().to_string();
    let out = cli(&["classify", "--cascade", &path, &face]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("notes.txt is not a valid face cascade") && err.contains("FERC"),
        "{err}"
    );
    assert!(!err.contains("truncated"), "{err}");
    let out = cli(&["classify", "--engine", "tract", "--onnx", &path, &face]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--onnx") && err.contains("notes.txt") && err.contains("ONNX"),
        "{err}"
    );
}

/// A PNG whose header claims `w` x `h` pixels (the rest is not needed to be refused).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    png_header_of(w, h, 8, 0) // 8-bit gray
}

/// A PNG header of `w` x `h` pixels at `depth` bits of PNG colour type `colour`.
fn png_header_of(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, colour, 0, 0, 0]); // deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(edge_runtime::crc32::crc32(&ihdr).to_be_bytes());
    // A first (empty) data chunk and the end: decoders read the header up to here.
    for (kind, data) in [
        (&b"IDAT"[..], &b"\x78\x9c\x03\x00\x00\x00\x00\x01"[..]),
        (b"IEND", b""),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&chunk);
        png.extend(edge_runtime::crc32::crc32(&chunk).to_be_bytes());
    }
    png
}

#[test]
fn devices_fifos_huge_and_truncated_files_are_refused_without_hanging() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("pipe.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, png_header(20_000, 20_000)).expect("write");
    let jpg = first_files("happy", 1).remove(0);
    let bytes = std::fs::read(&jpg).expect("read");
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).expect("write");
    let out = cli(&[
        "classify",
        "/dev/zero",
        fifo.to_str().expect("utf8"),
        huge.to_str().expect("utf8"),
        cut.to_str().expect("utf8"),
        jpg.to_str().expect("utf8"),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/dev/zero: not a regular file"), "{err}");
    assert!(err.contains("pipe.jpg: not a regular file"), "{err}");
    assert!(err.contains("huge.png: 20000x20000 pixels"), "{err}");
    assert!(err.contains("cut.jpg: damaged or truncated JPEG"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The whole file still gives its answer.
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "header and one face: {stdout}");
    assert!(!stdout.contains("cut.jpg"), "{stdout}");

    let face = jpg.to_str().expect("utf8");
    for (flag, what) in [("--model", "int8 model"), ("--cascade", "cascade")] {
        let out = cli(&["classify", flag, "/dev/zero", face]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("/dev/zero: not a regular file") && err.contains(what),
            "{flag}: {err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn folders_with_links_to_themselves_are_walked_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let faces = dir.path().join("faces");
    std::fs::create_dir(&faces).expect("mkdir");
    let jpg = first_files("surprise", 1).remove(0);
    std::fs::copy(&jpg, faces.join("a.jpg")).expect("copy");
    std::os::unix::fs::symlink(&faces, faces.join("self")).expect("link");
    std::os::unix::fs::symlink(dir.path(), faces.join("parent")).expect("link");
    std::os::unix::fs::symlink(faces.join("a.jpg"), faces.join("b.jpg")).expect("link");
    let out = cli(&["classify", "--json", faces.to_str().expect("utf8")]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(text(&out.stdout).lines().count(), 1, "one image, once");
}

#[test]
fn eval_split_is_refused_without_a_manifest() {
    let data = fer_dir();
    let out = cli(&[
        "eval",
        "--data",
        data.to_str().expect("utf8"),
        "--split",
        "bogus",
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--manifest"), "{err}");
}

/// A count no run could finish is refused with the range, instead of overflowing.
#[test]
fn bench_refuses_counts_out_of_range() {
    for runs in ["0", "18446744073709551615"] {
        let out = cli(&["bench", "--runs", runs]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("--runs") && err.contains("expected 1 to"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The number of faces classified per image is a setting, and reaching it is said, not silent.
#[test]
fn the_face_limit_is_a_setting_and_reaching_it_is_said() {
    let photos = fer_test_support::photos_dir();
    let astronaut = photos.join("astronaut.jpg").display().to_string();
    let out = cli(&["classify", "--json", "--max-faces", "1", &astronaut]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert!(
        err.contains("--max-faces") && err.contains("there may be more"),
        "{err}"
    );
    let out = cli(&["classify", "--max-faces", "0", &astronaut]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--max-faces is 0, expected 1 to 4096"),
        "{err}"
    );
}

/// `edge-cli` with stdout and stderr replaced (`None`: closed).
#[cfg(target_os = "linux")]
fn cli_with(args: &[&str], stdout: Option<&str>, stderr: &str) -> (Option<i32>, String) {
    use std::process::Stdio;
    let open = |p: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .expect("open")
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edge-cli"));
    cmd.args(args).stderr(Stdio::from(open(stderr)));
    // A closed descriptor is what the shell's `>&-` gives; std cannot close one, so run a shell.
    let out = match stdout {
        Some(p) => cmd.stdout(Stdio::from(open(p))).output(),
        None => {
            let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "'{}' {} >&-",
                    env!("CARGO_BIN_EXE_edge-cli"),
                    quoted.join(" ")
                ))
                .stderr(Stdio::piped())
                .output()
        }
    }
    .expect("run edge-cli");
    (out.status.code(), text(&out.stderr))
}

#[test]
#[cfg(target_os = "linux")]
fn results_that_cannot_be_written_are_an_error_never_a_panic() {
    let face = first_files("happy", 1)[0].display().to_string();
    // A full disk under stdout: exit 1 (not a panic's 101), whatever the command.
    for args in [
        vec!["classify", face.as_str()],
        vec!["classify", "--json", face.as_str()],
        vec!["bench", "--runs", "3"],
    ] {
        let (code, _) = cli_with(&args, Some("/dev/full"), "/dev/null");
        assert_eq!(code, Some(1), "{args:?} to /dev/full");
    }
    // stderr on a full disk: the error cannot be shown, but the exit code still says so.
    let (code, _) = cli_with(
        &["classify", "/no/such.jpg"],
        Some("/dev/null"),
        "/dev/full",
    );
    assert_eq!(code, Some(1));
    // stdout closed: refused before any work, with a reason.
    let (code, err) = cli_with(&["classify", &face], None, "/dev/null");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("stdout is closed"), "{err}");
    // A deliberate >/dev/null is fine.
    let (code, _) = cli_with(&["classify", &face], Some("/dev/null"), "/dev/null");
    assert_eq!(code, Some(0));
}

#[test]
fn model_files_given_are_the_ones_that_run() {
    let face = first_files("happy", 1)[0].display().to_string();
    let model = fer_test_support::models_dir().join("fer_cnn_paper.int8.bin");
    let model = model.display().to_string();
    let onnx = fer_test_support::models_dir().join("fer_cnn_paper.onnx");
    let onnx = onnx.display().to_string();
    // tract with another int8 model but no float ONNX would run the published ONNX.
    for args in [
        vec!["--model", &model, "classify", "--engine", "tract", &face],
        vec!["--model", &model, "bench", "--runs", "3"],
        vec![
            "--model", &model, "bench", "--runs", "3", "--engine", "tract",
        ],
    ] {
        let out = cli(&args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains("fer_cnn_paper.int8.bin") && err.contains("--onnx"),
            "{err}"
        );
    }
    // --onnx is not read by the int8 engine: say so instead of ignoring it.
    for args in [
        vec!["classify", "--onnx", &onnx, &face],
        vec!["bench", "--runs", "3", "--engine", "int8", "--onnx", &onnx],
    ] {
        let out = cli(&args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("only the tract engine"), "{err}");
    }
    // Both given: the pair runs.
    let out = cli(&[
        "--model", &model, "classify", "--engine", "tract", "--onnx", &onnx, &face,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_very_deep_folder_tree_is_searched_to_a_stated_depth() {
    let dir = tempfile::tempdir().expect("tmp");
    let jpg = first_files("happy", 1).remove(0);
    std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
    std::fs::copy(&jpg, dir.path().join("a/b/face.jpg")).expect("copy");
    // 3,000 levels: deeper than a path can name from the top, so made one level at a time.
    let made = Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && for i in $(seq 3000); do mkdir d && cd -P d || exit 1; done")
        .arg("sh")
        .arg(dir.path())
        .status()
        .expect("sh");
    assert!(made.success());
    let out = cli(&["classify", "--json", dir.path().to_str().expect("utf8")]);
    let err = text(&out.stderr);
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "the shallow face: {err}"
    );
    assert!(!out.status.success());
    assert!(err.contains("more than 32 folders deep"), "{err}");
}

/// `eval --faces detect`: photos through the detector; an image without a face counts as wrong.
#[test]
fn eval_through_the_detector_counts_photos_without_a_face_as_wrong() {
    let photos = fer_test_support::photos_dir();
    let dir = tempfile::tempdir().expect("tmp");
    // One real portrait (filed as happy) and, in every class, a photo of grass (no face).
    for class in [
        "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
    ] {
        let folder = dir.path().join(class);
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::copy(photos.join("grass.jpg"), folder.join("grass.jpg")).expect("copy");
    }
    std::fs::copy(
        photos.join("astronaut.jpg"),
        dir.path().join("happy/astronaut.jpg"),
    )
    .expect("copy");
    let data = dir.path().to_str().expect("utf8");
    let out = cli(&["eval", "--data", data, "--faces", "detect", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["total"], 8);
    let missed: Vec<u64> = r["missed"]
        .as_array()
        .expect("missed per class")
        .iter()
        .map(|v| v.as_u64().expect("count"))
        .collect();
    assert_eq!(missed, vec![1; 7], "every grass photo is a miss");
    let happy_row: u64 = r["confusion"][3]
        .as_array()
        .expect("row")
        .iter()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    assert_eq!(happy_row, 1, "the portrait's face is classified");
    let right = r["confusion"][3][3].as_u64().expect("count") as f64;
    assert!((r["accuracy"].as_f64().expect("accuracy") - right / 8.0).abs() < 1e-9);
    // The text report has a column for the misses; another crop rule is a setting.
    let out = cli(&[
        "eval",
        "--data",
        data,
        "--faces",
        "detect",
        "--margin",
        "30",
        "--shift-down",
        "-5",
    ]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        report.contains("no face") && report.contains("margin 30%, shift down -5%"),
        "{report}"
    );
    // The aligned crop on the CNN's eye landmarks: the portrait's face is classified the same
    // way (a face found, the grass photos still missed).
    let out = cli(&[
        "eval", "--data", data, "--faces", "detect", "--align", "2.6,0.34", "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let happy_row: u64 = r["confusion"][3]
        .as_array()
        .expect("row")
        .iter()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    assert_eq!(happy_row, 1, "the portrait's face is classified");
    // Crop settings without the detector, or out of range, are refused.
    for (args, expected) in [
        (
            vec!["eval", "--data", data, "--align", "2.6,0.3"],
            "--faces detect",
        ),
        (
            vec![
                "eval", "--data", data, "--faces", "detect", "--align", "2.6",
            ],
            "expected SIDE,DOWN",
        ),
        (
            vec![
                "eval", "--data", data, "--faces", "detect", "--align", "-1,0.3",
            ],
            "expected SIDE,DOWN",
        ),
        (
            vec![
                "eval",
                "--data",
                data,
                "--faces",
                "detect",
                "--detector",
                "lbp",
                "--align",
                "2.6,0.3",
            ],
            "needs the CNN detector",
        ),
        (
            vec!["eval", "--data", data, "--margin", "30"],
            "--faces detect",
        ),
        (
            vec![
                "eval", "--data", data, "--faces", "detect", "--margin", "500",
            ],
            "expected 0 to 200",
        ),
        (
            vec![
                "eval",
                "--data",
                data,
                "--faces",
                "detect",
                "--shift-down",
                "-90",
            ],
            "expected -50 to 50",
        ),
    ] {
        let out = cli(&args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(expected), "{err}");
    }
}

/// `jpeg` with an EXIF APP1 segment saying "orientation `value`" right after its SOI marker.
fn with_exif_orientation(jpeg: &[u8], value: u8) -> Vec<u8> {
    let mut app1 = vec![0xFF, 0xE1, 0, 34];
    app1.extend_from_slice(b"Exif\0\0II*\0\x08\0\0\0");
    app1.extend_from_slice(&[
        1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, value, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn a_phone_photo_stored_sideways_is_turned_upright_by_its_exif_orientation() {
    let photos = fer_test_support::photos_dir();
    let upright = photos.join("astronaut.jpg");
    let img = image::open(&upright).expect("decode");
    // Stored turned a quarter left, as a phone held upright stores it; EXIF 6 says "turn right".
    let mut sideways = Vec::new();
    img.rotate270()
        .write_to(
            &mut std::io::Cursor::new(&mut sideways),
            image::ImageFormat::Jpeg,
        )
        .expect("encode");
    let dir = tempfile::tempdir().expect("tmp");
    let plain = dir.path().join("sideways.jpg");
    std::fs::write(&plain, &sideways).expect("write");
    let tagged = dir.path().join("phone.jpg");
    std::fs::write(&tagged, with_exif_orientation(&sideways, 6)).expect("write");
    let boxes = |path: &std::path::Path| -> Vec<serde_json::Value> {
        let out = cli(&["classify", "--json", path.to_str().expect("utf8")]);
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["box"].clone())
            .collect()
    };
    // The same boxes within a few pixels (the sideways copy went through one more JPEG encode).
    let near = |a: &[serde_json::Value], b: &[serde_json::Value]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                ["x", "y", "w", "h"]
                    .iter()
                    .all(|k| (a[k].as_i64().expect("int") - b[k].as_i64().expect("int")).abs() <= 4)
            })
    };
    let reference = boxes(&upright);
    assert!(!reference.is_empty());
    let found = boxes(&tagged);
    assert!(near(&found, &reference), "{found:?} vs {reference:?}");
    let sideways_boxes = boxes(&plain);
    assert!(
        !near(&sideways_boxes, &reference),
        "without the tag the photo is sideways: {sideways_boxes:?}"
    );
}

#[test]
fn a_small_file_that_decodes_to_half_a_gigabyte_is_refused_before_decoding() {
    let dir = tempfile::tempdir().expect("tmp");
    // 8192x8192 16-bit RGBA: 512 MiB decoded, allowed by the side limit.
    let big = dir.path().join("deep.png");
    std::fs::write(&big, png_header_of(8192, 8192, 16, 6)).expect("write");
    let out = cli(&["classify", big.to_str().expect("utf8")]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("deep.png") && err.contains("more memory to decode than the 256 MiB"),
        "{err}"
    );
}

#[test]
fn an_icon_file_is_named_as_an_unsupported_format_not_as_damaged() {
    let dir = tempfile::tempdir().expect("tmp");
    // An ICO directory header (one 16x16 32-bit entry) and some data, named .png.
    let mut ico = vec![
        0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0, 0x68, 4, 0, 0, 22, 0, 0, 0,
    ];
    ico.extend((0..1200u32).map(|i| (i * 37 % 251) as u8));
    let path = dir.path().join("icon.png");
    std::fs::write(&path, ico).expect("write");
    let out = cli(&["classify", path.to_str().expect("utf8")]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("icon.png: an image in the ICO format, which this tool does not read"),
        "{err}"
    );
    assert!(!err.contains("damaged"), "{err}");
}

#[cfg(unix)]
#[test]
fn file_names_reach_the_terminal_and_json_escaped_and_distinct() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tmp");
    let face = first_files("happy", 1).remove(0);
    // A name with an escape sequence and a newline, and two names that are not UTF-8.
    let names: [&[u8]; 3] = [b"red\x1b[31m\nx.jpg", b"a\xff.jpg", b"a\xfe.jpg"];
    for n in names {
        std::fs::copy(&face, dir.path().join(std::ffi::OsStr::from_bytes(n))).expect("copy");
    }
    let out = cli(&["classify", "--json", dir.path().to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    let files: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object per line"))
        .map(|v| v["file"].as_str().expect("file").to_string())
        .collect();
    assert_eq!(files.len(), 3);
    let unique: std::collections::HashSet<&String> = files.iter().collect();
    assert_eq!(unique.len(), 3, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("a\\xFF.jpg")), "{files:?}");
    assert!(
        files.iter().any(|f| f.contains("red\\u{1b}[31m\\nx.jpg")),
        "{files:?}"
    );
    // The table and the errors escape them too.
    let out = cli(&["classify", dir.path().to_str().expect("utf8")]);
    assert!(!text(&out.stdout).contains('\u{1b}'));
    std::fs::write(
        dir.path()
            .join(std::ffi::OsStr::from_bytes(b"bad\x1b[2J.jpg")),
        b"x",
    )
    .expect("write");
    let out = cli(&["classify", dir.path().to_str().expect("utf8")]);
    let err = text(&out.stderr);
    assert!(
        !err.contains('\u{1b}') && err.contains("bad\\u{1b}[2J.jpg"),
        "{err}"
    );
}

#[test]
fn a_qdq_onnx_given_to_tract_is_refused_once_not_blamed_on_each_image() {
    let qdq = fer_test_support::models_dir().join("fer_cnn.qdq.onnx");
    let model = fer_test_support::models_dir().join("fer_cnn.int8.bin");
    let files: Vec<String> = first_files("happy", 3)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec![
        "--model",
        model.to_str().expect("utf8"),
        "classify",
        "--engine",
        "tract",
        "--onnx",
        qdq.to_str().expect("utf8"),
    ];
    args.extend(files.iter().map(String::as_str));
    let out = cli(&args);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.matches("error").count(), 1, "{err}");
    assert!(
        err.contains("fer_cnn.qdq.onnx") && err.contains("not the float expression model"),
        "{err}"
    );
}

#[test]
fn annotate_writes_a_picture_per_input_with_the_box_where_the_face_was_found() {
    let photos = fer_test_support::photos_dir();
    let astronaut = photos.join("astronaut.jpg");
    let grass = photos.join("grass.jpg");
    let dir = tempfile::tempdir().expect("tmp");
    // A second input named astronaut.jpg in another folder.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::copy(&astronaut, other.join("astronaut.jpg")).expect("copy");
    let out_dir = dir.path().join("pictures");
    let run = |extra: &[String]| {
        let mut args = vec![
            "classify",
            "--json",
            "--annotate",
            out_dir.to_str().expect("utf8"),
        ];
        args.extend(extra.iter().map(String::as_str));
        cli(&args)
    };
    let inputs: Vec<String> = [&astronaut, &grass, &other.join("astronaut.jpg")]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let out = run(&inputs);
    let err = text(&out.stderr);
    assert!(err.contains("grass.jpg: no face found"), "{err}");
    // One picture per input, the same size, named after it.
    for (name, from) in [
        ("astronaut.png", &astronaut),
        ("grass.png", &grass),
        ("astronaut-2.png", &astronaut),
    ] {
        let pic = image::open(out_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let input = image::open(from).expect("input");
        assert_eq!(
            (pic.width(), pic.height()),
            (input.width(), input.height()),
            "{name}"
        );
    }
    // The box is drawn where the face was found, in its label's colour.
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().expect("a face")).expect("json");
    let b = &first["box"];
    let (x, y, h) = (
        b["x"].as_u64().expect("x") as u32,
        b["y"].as_u64().expect("y") as u32,
        b["h"].as_u64().expect("h") as u32,
    );
    let label = edge_runtime::Emotion::from_folder_name(first["label"].as_str().expect("label"))
        .expect("a class");
    let pic = image::open(out_dir.join("astronaut.png"))
        .expect("picture")
        .to_rgb8();
    assert_eq!(
        *pic.get_pixel(x, y + h / 2),
        edge_cli::annotate::colour(label),
        "left edge of the box"
    );
    // A second run never replaces the pictures.
    let before = std::fs::read(out_dir.join("grass.png")).expect("read");
    let out = run(&inputs[..2]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("never replace"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(out_dir.join("grass.png")).expect("read"),
        before
    );
}

#[test]
fn a_contact_sheet_holds_every_input_as_a_named_thumbnail_and_replaces_nothing() {
    let photos = fer_test_support::photos_dir();
    let inputs: Vec<String> = ["astronaut.jpg", "grass.jpg", "brick.jpg"]
        .iter()
        .map(|n| photos.join(n).display().to_string())
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let sheet = dir.path().join("sheet.png");
    let sheet_arg = sheet.display().to_string();
    let run = |target: &str| {
        let mut args = vec!["classify", "--contact-sheet", target];
        args.extend(inputs.iter().map(String::as_str));
        cli(&args)
    };
    let out = run(&sheet_arg);
    // Two inputs without a face are still on the sheet (and still reported).
    assert!(text(&out.stderr).contains("grass.jpg: no face found"));
    let pic = image::open(&sheet).expect("the sheet").to_rgb8();
    // Three pictures: 2 per row, 2 rows of 248 x 268 cells.
    assert_eq!(pic.dimensions(), (2 * 248, 2 * 268));
    // The astronaut's thumbnail (512 x 512 scaled to 240) shows the face's box in its colour.
    let first: serde_json::Value = serde_json::from_str(
        text(&cli(&["classify", "--json", &inputs[0]]).stdout)
            .lines()
            .next()
            .expect("a face"),
    )
    .expect("json");
    let label = edge_runtime::Emotion::from_folder_name(first["label"].as_str().expect("label"))
        .expect("class");
    let (x, y, h) = (
        first["box"]["x"].as_u64().expect("x") as u32,
        first["box"]["y"].as_u64().expect("y") as u32,
        first["box"]["h"].as_u64().expect("h") as u32,
    );
    let at = |v: u32| 4 + (f64::from(v) * 240.0 / 512.0).round() as u32;
    // The 2-pixel line is about one pixel on the thumbnail, blended with the photo: its hue
    // shows (the label colour's lit channels above its dark ones) next to the scaled position.
    let want = edge_cli::annotate::colour(label);
    let tinted = |p: &image::Rgb<u8>| {
        let lit = (0..3).filter(|&c| want[c] > 128).map(|c| p[c]).min();
        let dark = (0..3).filter(|&c| want[c] <= 128).map(|c| p[c]).max();
        lit.unwrap_or(255) > dark.unwrap_or(0).saturating_add(40)
    };
    let near: Vec<_> = (0..3)
        .flat_map(|dx| (0..3).map(move |dy| (dx, dy)))
        .map(|(dx, dy)| *pic.get_pixel(at(x) + dx, at(y + h / 2) + dy - 1))
        .collect();
    assert!(
        near.iter().any(tinted),
        "no pixel of the box's colour {want:?} near its left edge: {near:?}"
    );
    // Never over an existing file; only .png names.
    let before = std::fs::read(&sheet).expect("read");
    let out = run(&sheet_arg);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("never replaces a file"));
    assert_eq!(std::fs::read(&sheet).expect("read"), before);
    let out = run(&dir.path().join("sheet.jpg").display().to_string());
    assert!(text(&out.stderr).contains("expected a .png file name"));
}
