//! `host-trainer cascade`: OpenCV's XML to edge-runtime's cascade file. The Debian opencv-data
//! XML converts to exactly the committed `models/face_lbp.cascade`; malformed or unsupported XML
//! is refused with the element and what was expected.

use std::process::Command;

use host_trainer::cascade_xml::parse;

/// Debian's opencv-data (installed by .ci/run).
const DEBIAN_XML: &str = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface.xml";

fn debian_xml() -> Option<String> {
    match std::fs::read_to_string(DEBIAN_XML) {
        Ok(s) => Some(s),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{DEBIAN_XML} is missing in CI: .ci/run installs Debian's opencv-data"
            );
            eprintln!("SKIPPED: install Debian's opencv-data to convert the real cascade");
            None
        }
    }
}

#[test]
fn the_debian_xml_converts_to_the_committed_cascade_byte_for_byte() {
    let Some(_) = debian_xml() else { return };
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("face.cascade");
    let run = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(["cascade", DEBIAN_XML, "--out"])
        .arg(&file)
        .output()
        .expect("run host-trainer");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("24x24 window, 20 stages, 139 weak classifiers, 136 features"),
        "{stdout}"
    );
    let committed = fer_test_support::models_dir().join("face_lbp.cascade");
    assert!(
        std::fs::read(&file).expect("written") == std::fs::read(&committed).expect("committed"),
        "models/face_lbp.cascade differs from a fresh conversion"
    );
}

fn err(xml: &str) -> String {
    format!("{:#}", parse(xml).expect_err("refused"))
}

/// A one-stage, one-feature cascade in OpenCV's format, with `stump`/`rect`/`leaves` swapped in.
fn tiny(feature_type: &str, nodes: &str, rect: &str, leaves: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><opencv_storage><cascade><stageType>BOOST</stageType>\
         <featureType>{feature_type}</featureType><height>24</height><width>24</width>\
         <stageNum>1</stageNum><stages><_><maxWeakCount>1</maxWeakCount>\
         <stageThreshold>-0.5</stageThreshold><weakClassifiers><_><internalNodes>{nodes}</internalNodes>\
         <leafValues>{leaves}</leafValues></_></weakClassifiers></_></stages>\
         <features><_><rect>{rect}</rect></_></features></cascade></opencv_storage>"
    )
}

const NODES: &str = "0 -1 0 -1 -1 -1 -1 -1 -1 -1 -1";

#[test]
fn a_minimal_cascade_parses_and_encodes() {
    let spec = parse(&tiny("LBP", NODES, "0 0 8 8", "-1 1")).expect("parse");
    assert_eq!(
        (spec.window_w, spec.window_h, spec.stages.len()),
        (24, 24, 1)
    );
    assert_eq!(spec.stages[0].1[0].subset, [u32::MAX; 8]);
    assert!(spec.encode().is_ok());
}

#[test]
fn malformed_and_unsupported_xml_is_refused_with_the_reason() {
    assert!(err("not xml").contains("not well-formed XML"));
    assert!(err("<a/>").contains("root element is <a>, expected <opencv_storage>"));
    assert!(
        err(&tiny("HAAR", NODES, "0 0 8 8", "-1 1")).contains("only LBP cascades are supported")
    );
    assert!(err(&tiny("LBP", "0 -1 0 1 2", "0 0 8 8", "-1 1"))
        .contains("stage 0 classifier 0: <internalNodes> has 5 numbers, expected 11"));
    assert!(err(&tiny(
        "LBP",
        "1 2 0 -1 -1 -1 -1 -1 -1 -1 -1",
        "0 0 8 8",
        "-1 1"
    ))
    .contains("a tree deeper than one split"));
    assert!(err(&tiny("LBP", NODES, "0 0 8", "-1 1")).contains("feature 0: <rect> has 3 numbers"));
    assert!(err(&tiny("LBP", NODES, "0 0 x 8", "-1 1")).contains("feature 0 w: expected a number"));
    assert!(err(&tiny("LBP", NODES, "0 0 8 8", "-1"))
        .contains("<leafValues> has 1 numbers, expected 2"));
    // Well-formed but not a valid cascade: a feature outside the window.
    let spec = parse(&tiny("LBP", NODES, "0 0 9 9", "-1 1")).expect("parses");
    assert!(spec
        .encode()
        .unwrap_err()
        .to_string()
        .contains("outside the detection window"));
}

#[test]
fn the_real_xml_parses_with_its_declared_counts() {
    let Some(xml) = debian_xml() else { return };
    let spec = parse(&xml).expect("parse");
    assert_eq!(spec.stages.len(), 20);
    assert_eq!(spec.features.len(), 136);
    assert_eq!(spec.stages.iter().map(|(_, w)| w.len()).sum::<usize>(), 139);
}

#[test]
fn deeply_nested_xml_is_refused_without_overflowing_the_stack() {
    let deep = "<a>".repeat(30_000) + &"</a>".repeat(30_000);
    let e = err(&deep);
    assert!(
        e.contains("nested 30000 deep") && e.contains("not a cascade"),
        "{e}"
    );
    // Comments, declarations and self-closing tags do not count as levels.
    let flat = format!(
        "<?xml version=\"1.0\"?><!-- {} --><opencv_storage>{}</opencv_storage>",
        "<a>".repeat(1000),
        "<b/>".repeat(1000)
    );
    let e = err(&flat);
    assert!(!e.contains("nested"), "{e}");
}
