//! Runs the published int8 model on the golden inputs on an emulated Cortex-M7 and prints the
//! logits over semihosting, one line per input:
//!
//! ```text
//! golden 0: -12 -80 3 41 -7 -20 -33 -> happy
//! ```
//!
//! then runs the first golden face once more with a mark after every layer (per-layer
//! instruction counts), then runs the face detector on the golden QVGA frame (`models/golden/detect_frame.gray`) and
//! prints the faces:
//!
//! ```text
//! faces: 3 1 79 79 24; ...
//! ```
//!
//! Before all that it runs edge-runtime's kernel conformance cases (the `SMLAD` kernels of
//! feature `dsp` against their plain twins) and prints `kernel conformance: N cases agree`.
//!
//! The host check (`fer-checks`, test `qemu`) compares both bit for bit with the host run.
//! Exit status: 0 on success, 1 if the model or the cascade is rejected or a fault occurs.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use edge_runtime::detect::{Cascade, Face};
use edge_runtime::pipeline::{self, FaceMode, Scratch, Settings, Source};
use edge_runtime::preprocess::{GrayFrame, Square};
use edge_runtime::steady::{Followed, Tracker};
use edge_runtime::{Logits, Model, INPUT_PIXELS};

/// The published model, 16-byte aligned as on the board and read in place from (emulated)
/// flash.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/fer_cnn.int8.bin"));
/// Its conv2 and conv3 weights pre-widened to int16 by the build script (edge_runtime::wide):
/// 184 KB of flash for about 6% fewer instructions per inference.
static WIDE: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/fer_cnn.wide.bin"
)));
/// The golden inputs: 2304 gray pixels each.
static GOLDEN: &[u8] = include_bytes!("../../../models/golden/inputs.bin");

/// The face detector and its golden frame (320x240 gray).
static CASCADE: &[u8] = include_bytes!("../../../models/face_lbp.cascade");
/// The CNN face detector (YuNet-s int8), word-aligned so that its weight rows are.
static CNN_DETECTOR: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/face_yunet_s.det"));
/// The CNN detector's input: the golden frame halved, padded to 160x128.
const CNN_FACTOR: usize = 2;
const CNN_INPUT: usize = 160 * 128;
/// Its arena at that size (`Plan::arena_len`; 205,315 bytes measured).
const CNN_ARENA: usize = 208 * 1024;
static FRAME: &[u8] = include_bytes!("../../../models/golden/detect_frame.gray");
const FRAME_W: usize = 320;
const FRAME_H: usize = 240;
/// The host checks' settings (fer_checks::face_settings): faces from 40 pixels.
const FACES: Settings = Settings::DEFAULT
    .with_mode(FaceMode::Detect)
    .with_min_face(40);
/// Integral image of the largest level (192x144 for 40-pixel faces in QVGA).
const SCRATCH: usize = 193 * 145;

/// Arena for the activations and the kernels' scratch; the model reports what it needs (36 KiB
/// for the published one).
const ARENA: usize = 40 * 1024;

/// Marks the start and the end of each inference for the instruction-counting QEMU plugin
/// (`plugin/insn_count.c`), which finds this function by its symbol name.
#[inline(never)]
#[no_mangle]
pub extern "C" fn fer_mark(tag: u32) {
    core::hint::black_box(tag);
}

fn mark(tag: u32) {
    fer_mark(tag);
}

/// One inference between two marks. Not inlined, so the instructions between the marks are the
/// same code for every input whatever the caller's loop looks like (the plugin's counts compare
/// inputs).
#[inline(never)]
fn marked_run(
    model: &Model<'_>,
    face: &[u8],
    arena: &mut [i8],
    tag: u32,
) -> Result<Logits, edge_runtime::Error> {
    mark(tag);
    let result = model.run(face, arena);
    mark(tag);
    result
}

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Every fast kernel (the `SMLAD` dot and quad dot products, the pooled conv layer) against
/// its plain twin on edge-runtime's conformance cases, the same the host tests run.
fn kernel_conformance() {
    match edge_runtime::kernels::conformance::run() {
        Ok(n) => hprintln!("kernel conformance: {} cases agree", n),
        Err(m) => {
            hprintln!(
                "kernel conformance: {} case {} differs from the reference",
                m.kernel,
                m.case
            );
            fail()
        }
    }
}

#[entry]
fn main() -> ! {
    kernel_conformance();
    let model = match Model::from_bytes(&MODEL.0).and_then(|m| m.with_wide(&WIDE.0)) {
        Ok(m) => m,
        Err(e) => {
            hprintln!("model rejected: {}", e);
            fail()
        }
    };
    hprintln!(
        "model: {} layers, {} weight bytes, arena {} bytes, {} MACs",
        model.layers().len(),
        model.weight_bytes(),
        model.arena_size(),
        model.macs()
    );
    let mut arena = [0i8; ARENA];
    for (i, face) in GOLDEN.chunks_exact(INPUT_PIXELS).enumerate() {
        match marked_run(&model, face, &mut arena, i as u32) {
            Ok(l) => hprintln!("golden {}: {}", i, logits_text(&l).as_str()),
            Err(e) => {
                hprintln!("golden {}: inference failed: {}", i, e);
                fail()
            }
        }
    }
    per_layer_marks(&model, &mut arena);
    detect_golden_frame(&model, &mut arena);
    steady_golden(&model, &mut arena);
    light_marks();
    cnn_golden_frame();
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Runs the first golden face once more with a mark before the inference and after every layer,
/// so the plugin's counts give each layer's instructions (the first includes the input's
/// conversion to int8). Says how many marks that is, for the host check to slice them.
fn per_layer_marks(model: &Model<'_>, arena: &mut [i8]) {
    hprintln!("layer marks: {}", model.layers().len() + 1);
    mark(500);
    let result = model.run_observed(&GOLDEN[..INPUT_PIXELS], arena, |i, _, _| {
        mark(501 + i as u32)
    });
    if let Err(e) = result {
        hprintln!("per-layer run failed: {}", e);
        fail()
    }
}

/// The published light normalization (`normalize::INPUT_RULE`) of one 48x48 face between two
/// marks: its instruction count.
fn light_marks() {
    let mut face = [0u8; INPUT_PIXELS];
    face.copy_from_slice(&GOLDEN[..INPUT_PIXELS]);
    mark(1100);
    edge_runtime::normalize::INPUT_RULE.apply(&mut face, 48, 48);
    mark(1100);
    hprintln!("light rule: {}", edge_runtime::normalize::INPUT_RULE.name());
}

/// The CNN detector on the golden frame halved (160x128): shrinking, the layers and the
/// decoding between two marks, then its faces (`cnn: x y w h score; …`), which the host check
/// compares with the host's.
fn cnn_golden_frame() {
    use edge_runtime::detect::cnn::decode::{decode, DecodeParams, Detection};
    use edge_runtime::detect::cnn::file::CnnDetector;
    use edge_runtime::detect::cnn::input::{input_size, prepare};
    let det = match CnnDetector::from_bytes(&CNN_DETECTOR.0) {
        Ok(d) => d,
        Err(e) => {
            hprintln!("CNN detector rejected: {}", e);
            fail()
        }
    };
    let Some((iw, ih)) = input_size(FRAME_W, FRAME_H, CNN_FACTOR, det.max_stride()) else {
        fail()
    };
    let plan = match det.plan(iw, ih) {
        Ok(p) if p.arena_len() <= CNN_ARENA && iw * ih <= CNN_INPUT => p,
        Ok(p) => {
            hprintln!("CNN arena {} bytes: more than {}", p.arena_len(), CNN_ARENA);
            fail()
        }
        Err(e) => {
            hprintln!("CNN plan: {}", e);
            fail()
        }
    };
    let Ok(frame) = GrayFrame::new(FRAME, FRAME_W, FRAME_H) else {
        fail()
    };
    let mut input = [0u8; CNN_INPUT];
    let mut arena = [0i8; CNN_ARENA];
    let mut found = [Detection::EMPTY; 16];
    mark(2000);
    prepare(&frame, CNN_FACTOR, (iw, ih), &mut input);
    if let Err(e) = det.run(&plan, &input[..iw * ih], &mut arena) {
        hprintln!("CNN run: {}", e);
        fail()
    }
    let n = decode(&det, &plan, &arena, &DecodeParams::default(), &mut found);
    mark(2000);
    // The CRC-32 of every head map, which the host check compares with its own: all layers of
    // the M7 kernels, not only the faces they lead to.
    let mut heads = [0u8; 8192];
    let mut len = 0;
    for h in 0..det.head_count() {
        for &v in &arena[plan.range(det.head(h).tensor)] {
            if len < heads.len() {
                heads[len] = v as u8;
            }
            len += 1;
        }
    }
    if len > heads.len() {
        hprintln!("CNN head maps: {} bytes, more than {}", len, heads.len());
        fail()
    }
    let mut line: heapless::String<512> = heapless::String::new();
    for d in &found[..n] {
        let _ = core::fmt::write(
            &mut line,
            format_args!("{} {} {} {} {}; ", d.x, d.y, d.w, d.h, d.score),
        );
    }
    hprintln!(
        "cnn: {} (arena {} bytes, heads crc {})",
        line.as_str(),
        plan.arena_len(),
        edge_runtime::crc32::crc32(&heads[..len])
    );
}

/// The face pipeline on the golden frame: the face search between two marks (the detector's
/// instruction count), the faces it found, then the largest face's square and int8 logits.
fn detect_golden_frame(model: &Model<'_>, arena: &mut [i8]) {
    let cascade = match Cascade::from_bytes(CASCADE) {
        Ok(c) => c,
        Err(e) => {
            hprintln!("cascade rejected: {}", e);
            fail()
        }
    };
    let frame = match GrayFrame::new(FRAME, FRAME_W, FRAME_H) {
        Ok(f) => f,
        Err(e) => {
            hprintln!("golden frame: {}", e);
            fail()
        }
    };
    if FACES.integral_len(&cascade, FRAME_W, FRAME_H) > SCRATCH {
        hprintln!("detector scratch too small");
        fail()
    }
    let mut integral = [0u32; SCRATCH];
    let mut hits = [Face::EMPTY; 512];
    let mut faces = [Face::EMPTY; 16];
    let mut scratch = Scratch {
        integral: &mut integral,
        hits: &mut hits,
        faces: &mut faces,
    };
    let mut squares = [(Square::centre(FRAME_W, FRAME_H), Source::Centre); 1];
    mark(1000);
    let found = pipeline::face_squares(&frame, Some(&cascade), &FACES, &mut scratch, &mut squares);
    mark(1000);
    let Some(st) = found.detector else {
        hprintln!("the detector did not run");
        fail()
    };
    hprintln!(
        "detector: {} windows, {} hits, {} levels",
        st.windows,
        st.hits,
        st.levels
    );
    let mut line: heapless::String<512> = heapless::String::new();
    for f in &scratch.faces[..st.faces] {
        let _ = core::fmt::write(
            &mut line,
            format_args!("{} {} {} {} {}; ", f.x, f.y, f.w, f.h, f.neighbours),
        );
    }
    hprintln!("faces: {}", line.as_str());

    if found.squares == 0 {
        hprintln!("pipeline: no face");
        fail()
    }
    let square = squares[0].0;
    match pipeline::classify(model, &frame, square, arena) {
        Ok(l) => hprintln!(
            "pipeline: {} {} {}: {}",
            square.x,
            square.y,
            square.side,
            logits_text(&l).as_str()
        ),
        Err(e) => {
            hprintln!("pipeline: {}", e);
            fail()
        }
    }
}

/// The golden faces as the frames of one followed face (the same square each time) through
/// edge-runtime's steady labels with the published setting: one label per frame, which the
/// host check compares with the same tracker on the host (and the faces' own labels).
fn steady_golden(model: &Model<'_>, arena: &mut [i8]) {
    let steady = FACES.steady;
    let margin = steady.margin_units(pipeline::output_q(model).scale);
    let mut tracker: Tracker<2> = Tracker::new();
    let square = Square {
        x: 100,
        y: 60,
        side: 96,
    };
    let mut line: heapless::String<512> = heapless::String::new();
    for face in GOLDEN.chunks_exact(INPUT_PIXELS) {
        let logits = match model.run(face, arena) {
            Ok(l) => l,
            Err(e) => {
                hprintln!("steady: inference failed: {}", e);
                fail()
            }
        };
        let mut out = [Followed::EMPTY; 1];
        tracker.update(
            &steady,
            margin,
            &[(square, logits.0.map(i16::from))],
            &mut out,
        );
        let _ = core::fmt::write(
            &mut line,
            format_args!("{}/{} ", out[0].label.name(), out[0].raw.name()),
        );
    }
    hprintln!("steady: {}", line.as_str());
}

/// `l0 l1 … l6 -> label`: the int8 logits and the class they name, as the host checks read them.
fn logits_text(l: &Logits) -> heapless::String<64> {
    let mut text = heapless::String::new();
    for v in l.0 {
        let _ = core::fmt::write(&mut text, format_args!("{v} "));
    }
    let _ = core::fmt::write(&mut text, format_args!("-> {}", l.argmax().name()));
    text
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault at pc {:#010x}", frame.pc());
    fail()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    fail()
}
