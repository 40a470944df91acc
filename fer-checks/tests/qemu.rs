//! Rung 4 (Cortex-M7 part): the same int8 model, built for thumbv7em-none-eabihf and run on
//! QEMU's mps2-an500 (a Cortex-M7), gives the golden logits bit for bit.
//! Needs `qemu-system-arm` (Debian: qemu-system-arm) and the thumbv7em-none-eabihf target.

use std::path::PathBuf;
use std::process::Command;

/// Whether QEMU is installed; in CI (`CI` set) its absence is a failure, not a skip.
fn have_qemu() -> bool {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-system-arm is missing in CI: .ci/run must install it"
        );
        eprintln!("SKIPPED: install qemu-system-arm (Debian package qemu-system-arm) to run the Cortex-M7 checks");
    }
    ok
}

/// The QEMU firmware's folder.
fn firmware() -> PathBuf {
    fer_checks::firmware_dir("qemu")
}

#[test]
fn cortex_m7_under_qemu_matches_the_golden_logits() {
    if !have_qemu() {
        return;
    }
    let out = fer_checks::cargo_firmware("qemu", "run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "QEMU firmware failed:\n{stdout}\n{stderr}"
    );
    // The `SMLAD` kernels agreed with their plain twins on the M7 before any golden.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("kernel conformance: ") && l.ends_with(" cases agree")),
        "no passing kernel conformance:\n{stdout}"
    );
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fer_checks::models_dir().join("golden/logits.json")).expect("logits.json"),
    )
    .expect("json");
    let expected = golden["logits"].as_array().expect("logits");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("golden "))
        .collect();
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, want) in lines.iter().zip(expected) {
        let nums: Vec<i64> = line
            .split(':')
            .nth(1)
            .and_then(|r| r.split("->").next())
            .expect("logits")
            .split_whitespace()
            .map(|v| v.parse().expect("int"))
            .collect();
        let want: Vec<i64> = want
            .as_array()
            .expect("row")
            .iter()
            .map(|v| v.as_i64().expect("int"))
            .collect();
        assert_eq!(nums, want, "{line}");
    }
    // The detector on the golden frame: the same faces as on the host.
    let frame = std::fs::read(fer_checks::models_dir().join("golden/detect_frame.gray"))
        .expect("detect_frame.gray");
    let cascade_file = fer_checks::artifact("face_lbp.cascade");
    let cascade = edge_runtime::detect::Cascade::from_bytes(&cascade_file).expect("cascade");
    let host: String = fer_checks::detect_faces(&cascade, &frame, fer_checks::DETECT_FRAME)
        .iter()
        .map(|f| format!("{} {} {} {} {}; ", f.x, f.y, f.w, f.h, f.neighbours))
        .collect();
    let target = stdout
        .lines()
        .find_map(|l| l.strip_prefix("faces: "))
        .expect("a faces line");
    assert!(
        !host.is_empty(),
        "the host finds no face in the golden frame"
    );
    assert_eq!(
        target.trim(),
        host.trim(),
        "Cortex-M7 faces differ from the host's"
    );
    // The CNN detector on the same frame halved: the same faces and scores as on the host.
    let det_file = fer_checks::artifact("face_yunet_s.det");
    let det =
        edge_runtime::detect::cnn::file::CnnDetector::from_bytes(&det_file).expect("detector");
    let p = edge_runtime::detect::cnn::decode::DecodeParams::default();
    let host: String = fer_checks::cnn_detections(&det, &frame, fer_checks::DETECT_FRAME, 2, &p)
        .iter()
        .map(|d| format!("{} {} {} {} {}; ", d.x, d.y, d.w, d.h, d.score))
        .collect();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("cnn: "))
        .expect("a cnn line");
    let target = line.split(" (arena").next().expect("faces");
    assert!(
        !host.is_empty(),
        "the host's CNN finds no face in the golden frame"
    );
    assert_eq!(
        target.trim(),
        host.trim(),
        "Cortex-M7 CNN faces differ from the host's"
    );
    // Every head map to the byte: all the M7's layers, not only the faces they lead to.
    let crc = fer_checks::cnn_heads_crc(&det, &frame, fer_checks::DETECT_FRAME, 2);
    assert!(
        line.ends_with(&format!("heads crc {crc})")),
        "Cortex-M7 CNN head maps differ from the host's (host CRC {crc}): {line}"
    );
    // The whole face pipeline (square with margin, 48x48, logits) on the same frame.
    let model_file = fer_checks::artifact("fer_cnn.int8.bin");
    let model = edge_runtime::Model::from_bytes(&model_file).expect("model");
    let (sq, logits) =
        fer_checks::pipeline_largest_face(&cascade, &model, &frame, fer_checks::DETECT_FRAME)
            .expect("the host pipeline finds the face");
    let values: Vec<String> = logits.0.iter().map(i8::to_string).collect();
    let host = format!(
        "{} {} {}: {} -> {}",
        sq.x,
        sq.y,
        sq.side,
        values.join(" "),
        logits.argmax().name()
    );
    let target = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pipeline: "))
        .expect("a pipeline line");
    assert_eq!(
        target.trim(),
        host,
        "Cortex-M7 face pipeline differs from the host's"
    );
    // Steady labels: the golden faces as frames of one followed face, on the host and the M7.
    let steady = fer_checks::FACE_SETTINGS.steady;
    let margin = steady.margin_units(edge_runtime::pipeline::output_q(&model).scale);
    let mut tracker: edge_runtime::steady::Tracker<2> = edge_runtime::steady::Tracker::new();
    let square = edge_runtime::preprocess::Square {
        x: 100,
        y: 60,
        side: 96,
    };
    let mut arena = vec![0i8; model.arena_size()];
    let golden_inputs =
        std::fs::read(fer_checks::models_dir().join("golden/inputs.bin")).expect("inputs.bin");
    let mut host_steady = String::new();
    for face in golden_inputs.chunks_exact(edge_runtime::INPUT_PIXELS) {
        let l = model.run(face, &mut arena).expect("run");
        let mut out = [edge_runtime::steady::Followed::EMPTY; 1];
        tracker.update(&steady, margin, &[(square, l.0.map(i16::from))], &mut out);
        host_steady.push_str(&format!("{}/{} ", out[0].label.name(), out[0].raw.name()));
    }
    let target_steady = stdout
        .lines()
        .find_map(|l| l.strip_prefix("steady: "))
        .expect("a steady line");
    assert_eq!(
        target_steady.trim(),
        host_steady.trim(),
        "Cortex-M7 steady labels differ from the host's"
    );
    println!("{stdout}");
}

/// Instructions per inference on the emulated Cortex-M7, counted exactly by a QEMU TCG plugin
/// (`firmware/qemu/plugin/insn_count.c`, built here with the C compiler) between the firmware's
/// markers around each inference. Prints instructions per MAC (the `SMLAD` kernels' figure);
/// asserts the count is the same for every input within a few instructions (the kernels do not
/// branch on data; the compiler may turn an output stage's clamp into a branch, which the golden
/// inputs showed as 2 instructions on 2026-12-03).
#[test]
fn instructions_per_inference_on_cortex_m7() {
    if !have_qemu() {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-system-arm is missing in CI"
        );
        eprintln!("SKIPPED: install qemu-system-arm to count Cortex-M7 instructions");
        return;
    }
    let firmware = firmware();
    let target = fer_checks::firmware_target();
    let build = fer_checks::cargo_firmware("qemu", "build");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let elf = target.join("thumbv7em-none-eabihf/release/fer-qemu");
    let plugin = target.join("libinsn_count.so");
    let cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&plugin)
        .arg(firmware.join("plugin/insn_count.c"))
        .output()
        .expect("a C compiler (cc) builds the QEMU plugin");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let nm = Command::new("nm")
        .arg(&elf)
        .output()
        .expect("nm (binutils) lists the firmware symbols");
    let symbols = String::from_utf8_lossy(&nm.stdout);
    let mark = symbols
        .lines()
        .find(|l| l.ends_with(" fer_mark"))
        .and_then(|l| l.split_whitespace().next())
        .expect("fer_mark symbol");
    let out = Command::new("qemu-system-arm")
        .args(["-cpu", "cortex-m7", "-machine", "mps2-an500", "-nographic"])
        .args([
            "-semihosting-config",
            "enable=on,target=native",
            "-d",
            "plugin",
        ])
        .arg("-plugin")
        .arg(format!("{},mark=0x{mark}", plugin.display()))
        .arg("-kernel")
        .arg(&elf)
        .output()
        .expect("qemu runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let marks: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("mark "))
        .map(|v| v.trim().parse().expect("count"))
        .collect();
    // Marks: a pair around each golden inference, then one before and one after every layer
    // of a further inference (`layer marks: N` says how many), then a pair around the detector,
    // then a pair around the light normalization of one face, then a pair around the CNN
    // detector.
    let layer_marks: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("layer marks: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a 'layer marks' line");
    assert!(marks.len() > layer_marks + 6, "{text}");
    let (golden_marks, rest) = marks.split_at(marks.len() - layer_marks - 6);
    let (layer_marks, rest) = rest.split_at(layer_marks);
    let (detector_marks, rest) = rest.split_at(2);
    let (light_marks, cnn_marks) = rest.split_at(2);
    let cnn = cnn_marks[1] - cnn_marks[0];
    println!(
        "Cortex-M7 (QEMU mps2-an500): {cnn} instructions for the CNN face detector on a QVGA frame (halved to 160x128: shrink, layers, decode)"
    );
    assert!(cnn > 1_000_000, "the CNN detector ran: {cnn} instructions");
    let light = light_marks[1] - light_marks[0];
    let rule = text
        .lines()
        .find_map(|l| l.strip_prefix("light rule: "))
        .expect("a 'light rule' line");
    println!(
        "Cortex-M7 (QEMU mps2-an500): {light} instructions for the light normalization ({}) of one 48x48 face",
        rule.trim()
    );
    if rule.trim() != "none" {
        assert!(
            (2304..1_000_000).contains(&light),
            "the light normalization runs over every pixel: {light} instructions"
        );
    }
    assert!(golden_marks.len().is_multiple_of(2), "{text}");
    let per: Vec<u64> = golden_marks.chunks(2).map(|p| p[1] - p[0]).collect();
    let per_layer: Vec<u64> = layer_marks.windows(2).map(|p| p[1] - p[0]).collect();
    let detector = detector_marks[1] - detector_marks[0];
    println!(
        "Cortex-M7 (QEMU mps2-an500): {detector} instructions for the face detector on a QVGA frame (faces from 40 px)"
    );
    assert!(
        detector > 1_000_000,
        "the detector ran: {detector} instructions"
    );
    let macs: u64 = text
        .lines()
        .find_map(|l| l.split(", ").find_map(|f| f.strip_suffix(" MACs")))
        .and_then(|v| v.trim().parse().ok())
        .expect("MAC count line");
    println!(
        "Cortex-M7 (QEMU mps2-an500): {} instructions per inference, {macs} MACs, {:.2} instructions/MAC",
        per[0],
        per[0] as f64 / macs as f64
    );
    let spread = per.iter().max().unwrap_or(&0) - per.iter().min().unwrap_or(&0);
    assert!(
        spread <= 16,
        "counts differ between inputs by more than 16 instructions: {per:?}"
    );
    // Per layer (the first includes converting the pixels to int8).
    let model_file = fer_checks::artifact("fer_cnn.int8.bin");
    let model = edge_runtime::Model::from_bytes(&model_file).expect("model");
    assert_eq!(per_layer.len(), model.layers().len(), "{text}");
    println!("| layer | instructions | MACs | instructions/MAC | share |");
    println!("|---|---:|---:|---:|---:|");
    let mut convs = 0;
    for (l, &n) in model.layers().iter().zip(&per_layer) {
        let name = match l.kind {
            edge_runtime::format::Kind::Conv3x3 => {
                convs += 1;
                format!(
                    "conv{convs} ({}x{}x{} → {})",
                    l.in_h, l.in_w, l.in_c, l.out_c
                )
            }
            edge_runtime::format::Kind::Dense => format!("dense {} → {}", l.in_c, l.out_c),
        };
        println!(
            "| {name} | {n} | {} | {:.2} | {:.1}% |",
            l.macs(),
            n as f64 / l.macs() as f64,
            100.0 * n as f64 / per[0] as f64
        );
    }
    let layers_total: u64 = per_layer.iter().sum();
    println!(
        "sum of the layers {layers_total} (with the marks' own instructions), whole inference {}",
        per[0]
    );
    assert!(
        layers_total.abs_diff(per[0]) <= per[0] / 100,
        "the layers' counts ({layers_total}) add up to the inference's ({})",
        per[0]
    );
    // An SMLAD does two multiply-accumulates, and nothing does more: fewer instructions than
    // half the MACs would mean the counter is broken.
    assert!(
        per[0] > macs / 2,
        "fewer instructions than half the MACs: the counter is broken"
    );
}
