//! The expression camera on the OpenMV Cam H7: capture a QVGA frame from the OV7725, find the
//! largest face with edge-runtime's CNN face detector (YuNet-s int8 on the frame halved to
//! 160x128; the centred 240x240 square when none is found, said in the log), resize its square
//! to 48x48 gray with edge-runtime's integer resampler, classify it with the int8 model read in
//! place from flash, log label, confidence, latency and frame rate over defmt/RTT, and light the
//! LED in the expression's colour.
//!
//! Faults: a camera that does not answer is logged, blinks 2 red flashes and is retried; a model
//! that fails validation is logged and blinks 3 flashes forever without running inference; a
//! detector that fails validation or cannot run is logged and the centre square is classified;
//! a failed capture is logged (4 flashes) and the next frame is tried. A panic logs its message
//! over defmt and halts (panic-probe).
#![no_std]
#![no_main]

mod board;
mod camera;
mod cycles;
mod d2_sram;
mod dma_cache;
mod led;

use defmt_rtt as _;
use panic_probe as _;

use edge_runtime::detect::cnn::decode::Detection;
use edge_runtime::detect::cnn::file::CnnDetector;
use edge_runtime::pipeline::{self, CnnScratch, FaceMode, Settings, Source};
use edge_runtime::preprocess::{luma_422_in_place, GrayFrame, Square};
use edge_runtime::steady::{Followed, Tracker};
use edge_runtime::Model;
use embassy_executor::Spawner;
use embassy_stm32::{bind_interrupts, dcmi, dma, peripherals};
use static_cell::ConstStaticCell;

use crate::camera::{Frame, Power};
use crate::led::{Fault, RgbLed};

bind_interrupts!(struct Irqs {
    DCMI => dcmi::InterruptHandler<peripherals::DCMI>;
    DMA1_STREAM0 => dma::InterruptHandler<peripherals::DMA1_CH0>;
});

/// The published int8 model, 16-byte aligned and read in place from flash.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/fer_cnn.int8.bin"));
/// Its conv2 and conv3 weights pre-widened to int16 by the build script (edge_runtime::wide):
/// 184 KB of flash for about 6% fewer instructions per inference.
static WIDE: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/fer_cnn.wide.bin"
)));

/// Arena: the published model needs 36,867 bytes (27,648 of activations, 9,219 of kernel
/// scratch: one pool quad's input patch, word-aligned).
const ARENA: usize = 40 * 1024;
static ARENA_BUF: ConstStaticCell<[i8; ARENA]> = ConstStaticCell::new([0; ARENA]);
/// One YUV 4:2:2 QVGA frame, filled by DMA; its first half then holds the luma plane.
static FRAME: ConstStaticCell<Frame> = ConstStaticCell::new(Frame::new());
/// The face detector: YuNet-s int8 (`host-trainer detector`, models/face_yunet_s.det), read in
/// place from flash.
static DETECTOR: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/face_yunet_s.det"));
/// The detector runs on the QVGA frame halved: 160x120, padded to 160x128 (its strides).
const DETECT_FACTOR: usize = 2;
const DETECT_INPUT: usize = 160 * 128;
static DETECT_BUF: ConstStaticCell<[u8; DETECT_INPUT]> = ConstStaticCell::new([0; DETECT_INPUT]);
/// The pipeline's settings: faces found by the detector, cropped by the CNN's crop rule.
const FACES: Settings = Settings::DEFAULT.with_mode(FaceMode::Detect);

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_stm32::init(board::config());
    let d2 = d2_sram::enable();
    let mut cp = cortex_m::Peripherals::take().expect("core peripherals are taken once, here");
    cp.SCB.enable_icache();
    cp.SCB.enable_dcache(&mut cp.CPUID);
    cycles::start(&mut cp.DCB, &mut cp.DWT);
    let mut led = RgbLed::new(p.PC0, p.PC1, p.PC2);
    defmt::info!("fer-openmv-h7: core {} MHz", board::CORE_HZ / 1_000_000);

    let model = match Model::from_bytes(&MODEL.0).and_then(|m| m.with_wide(&WIDE.0)) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("model rejected, no inference will run: {}", e);
            loop {
                led.blink(Fault::Model).await;
            }
        }
    };
    defmt::info!(
        "model: {} layers, {} weight bytes, arena {} bytes, {} MACs",
        model.layers().len(),
        model.weight_bytes(),
        model.arena_size(),
        model.macs()
    );

    let mut power = Power::on(p.TIM1, p.PA8, p.PA10, p.PD7);
    let mut cam = ov7725::Ov7725::new(camera::sccb(p.I2C1, p.PB8, p.PB9));
    camera::bring_up(&mut power, &mut cam, &mut led).await;
    let mut dcmi = dcmi::Dcmi::new_8bit(
        p.DCMI,
        p.DMA1_CH0,
        Irqs,
        p.PC6,
        p.PC7,
        p.PE0,
        p.PE1,
        p.PE4,
        p.PB6,
        p.PE5,
        p.PE6,
        p.PB7,
        p.PA4,
        p.PA6,
        camera::dcmi_config(),
    );

    let detector = match CnnDetector::from_bytes(&DETECTOR.0) {
        Ok(d) => match d.plan(160, 128) {
            Ok(plan) if plan.arena_len() <= d2_sram::CNN_ARENA => Some(d),
            Ok(plan) => {
                defmt::error!(
                    "face detector needs {} bytes of arena, {} reserved; centre square only",
                    plan.arena_len(),
                    d2_sram::CNN_ARENA
                );
                None
            }
            Err(e) => {
                defmt::error!(
                    "face detector cannot run at 160x128: {}; centre square only",
                    e
                );
                None
            }
        },
        Err(e) => {
            defmt::error!("face detector rejected: {}; centre square only", e);
            None
        }
    };
    let frame = FRAME.take();
    let arena = ARENA_BUF.take();
    let detect_input = DETECT_BUF.take();
    let detect_arena = d2.cnn_arena();
    let mut detections = [Detection::EMPTY; 4];
    let centre = Square::centre(ov7725::WIDTH, ov7725::HEIGHT);
    let mut squares = [(centre, Source::Centre); 1];
    let mut luma_phase: Option<usize> = None;
    let mut last = cycles::now();
    let mut frames: u32 = 0;
    let mut had_face = true;
    // Steady labels (edge-runtime's `steady`): the face is followed from frame to frame and its
    // label changes only when another class leads its running average.
    let steady = FACES.steady;
    let margin = steady.margin_units(pipeline::output_q(&model).scale);
    let mut tracker: Tracker<2> = Tracker::new();
    loop {
        frame.clean(&mut cp.SCB);
        let t_capture = cycles::now();
        if let Err(e) = dcmi.capture(&mut frame.0).await {
            defmt::warn!("capture failed: {}; trying the next frame", e);
            led.blink(Fault::Capture).await;
            continue;
        }
        frame.invalidate(&mut cp.SCB);
        let t_pre = cycles::now();
        let bytes = frame.bytes_mut();
        let phase = *luma_phase.get_or_insert_with(|| {
            let ph = ov7725::luma_phase(bytes);
            defmt::info!(
                "camera byte order: {}",
                if ph == 0 { "YUYV" } else { "UYVY" }
            );
            ph
        });
        let gray = luma_422_in_place(bytes, phase, ov7725::WIDTH * ov7725::HEIGHT);
        let view = match GrayFrame::new(gray, ov7725::WIDTH, ov7725::HEIGHT) {
            Ok(v) => v,
            Err(e) => defmt::panic!("gray frame: {}", e),
        };
        let t_detect = cycles::now();
        let found = match &detector {
            Some(det) => {
                let mut scratch = CnnScratch {
                    input: &mut detect_input[..],
                    arena: &mut detect_arena[..],
                    found: &mut detections,
                };
                match pipeline::cnn_face_squares(
                    &view,
                    det,
                    DETECT_FACTOR,
                    &FACES,
                    &mut scratch,
                    &mut squares,
                ) {
                    Ok(n) => n,
                    Err(e) => defmt::panic!("face detector: {}", e),
                }
            }
            None => 0,
        };
        let found = (found > 0).then_some(squares[0].0);
        let square = found.unwrap_or(centre);
        if found.is_some() != had_face {
            had_face = found.is_some();
            if had_face {
                defmt::info!("face found");
            } else {
                defmt::info!("no face found: classifying the centre square");
            }
        }
        let t_crop = cycles::now();
        let mut input = [0u8; edge_runtime::INPUT_PIXELS];
        if let Err(e) = pipeline::face_input(&view, square, &mut input) {
            defmt::panic!("face crop: {}", e);
        }
        let t_infer = cycles::now();
        let logits = match model.run(&input, arena) {
            Ok(l) => l,
            Err(e) => defmt::panic!("inference: {}", e),
        };
        let t_done = cycles::now();
        let mut followed = [Followed::EMPTY; 1];
        tracker.update(
            &steady,
            margin,
            &[(square, logits.0.map(i16::from))],
            &mut followed,
        );
        let (label, raw) = (followed[0].label, followed[0].raw);
        let scale = pipeline::output_q(&model).scale;
        let conf =
            edge_runtime::scores::softmax_average(&followed[0].average, scale)[label as usize];
        led.show(led::colour_of(label));
        frames += 1;
        let frame_us = cycles::micros(last, t_done);
        last = t_done;
        defmt::info!(
            "#{} {} {=u32}% (frame: {}) face {=usize}x{=usize} at ({=usize},{=usize}) | capture {=u32} ms, detect {=u32} ms, crop {=u32} us, inference {=u32}.{=u32:02} ms | {=u32}.{=u32} fps",
            frames,
            label.name(),
            (conf * 100.0) as u32,
            raw.name(),
            square.side,
            square.side,
            square.x,
            square.y,
            cycles::micros(t_capture, t_pre) / 1000,
            cycles::micros(t_detect, t_crop) / 1000,
            cycles::micros(t_crop, t_infer),
            cycles::micros(t_infer, t_done) / 1000,
            cycles::micros(t_infer, t_done) % 1000 / 10,
            1_000_000 / frame_us.max(1),
            10_000_000 / frame_us.max(1) % 10
        );
    }
}
