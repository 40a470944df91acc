//! The expression camera on the OpenMV Cam H7: capture a QVGA frame from the OV7725, take the
//! face square (the centred 240x240 square until the face detector lands), resize it to 48x48
//! gray with edge-runtime's integer resampler, classify it with the int8 model read in place from
//! flash, log label, confidence, latency and frame rate over defmt/RTT, and light the LED in the
//! expression's colour.
//!
//! Faults: a camera that does not answer is logged, blinks 2 red flashes and is retried; a model
//! that fails validation is logged and blinks 3 flashes forever without running inference; a
//! failed capture is logged (4 flashes) and the next frame is tried. A panic logs its message
//! over defmt and halts (panic-probe).
#![no_std]
#![no_main]

mod board;
mod camera;
mod cycles;
mod dma_cache;
mod led;

use defmt_rtt as _;
use panic_probe as _;

use edge_runtime::preprocess::{resize_to_input, yuyv_luma, GrayFrame, Square};
use edge_runtime::{scores, Model, INPUT_PIXELS};
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

/// Activation arena: the published model needs 27,648 bytes.
const ARENA: usize = 32 * 1024;
static ARENA_BUF: ConstStaticCell<[i8; ARENA]> = ConstStaticCell::new([0; ARENA]);
/// One YUV 4:2:2 QVGA frame, filled by DMA.
static FRAME: ConstStaticCell<Frame> = ConstStaticCell::new(Frame::new());
/// Its luma plane.
static GRAY: ConstStaticCell<[u8; ov7725::WIDTH * ov7725::HEIGHT]> =
    ConstStaticCell::new([0; ov7725::WIDTH * ov7725::HEIGHT]);

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_stm32::init(board::config());
    let mut cp = cortex_m::Peripherals::take().expect("core peripherals are taken once, here");
    cp.SCB.enable_icache();
    cp.SCB.enable_dcache(&mut cp.CPUID);
    cycles::start(&mut cp.DCB, &mut cp.DWT);
    let mut led = RgbLed::new(p.PC0, p.PC1, p.PC2);
    defmt::info!("fer-openmv-h7: core {} MHz", board::CORE_HZ / 1_000_000);

    let model = match Model::from_bytes(&MODEL.0) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("model rejected, no inference will run: {}", e);
            loop {
                led.blink(Fault::Model).await;
            }
        }
    };
    let out_q = model.layers()[model.layers().len() - 1].output;
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

    let frame = FRAME.take();
    let gray = GRAY.take();
    let arena = ARENA_BUF.take();
    let mut input = [0u8; INPUT_PIXELS];
    let mut luma_phase: Option<usize> = None;
    let mut last = cycles::now();
    let mut frames: u32 = 0;
    let square = Square::centre(ov7725::WIDTH, ov7725::HEIGHT);
    defmt::info!(
        "face region: centre square {}x{} at ({}, {}) (no face detector yet)",
        square.side,
        square.side,
        square.x,
        square.y
    );
    loop {
        let t_capture = cycles::now();
        if let Err(e) = dcmi.capture(&mut frame.0).await {
            defmt::warn!("capture failed: {}; trying the next frame", e);
            led.blink(Fault::Capture).await;
            continue;
        }
        frame.invalidate(&mut cp.SCB);
        let t_pre = cycles::now();
        let bytes = frame.bytes();
        let phase = *luma_phase.get_or_insert_with(|| {
            let ph = ov7725::luma_phase(bytes);
            defmt::info!(
                "camera byte order: {}",
                if ph == 0 { "YUYV" } else { "UYVY" }
            );
            ph
        });
        yuyv_luma(&bytes[phase..], gray);
        let view = match GrayFrame::new(gray, ov7725::WIDTH, ov7725::HEIGHT) {
            Ok(v) => v,
            Err(e) => defmt::panic!("gray frame: {}", e),
        };
        if let Err(e) = resize_to_input(&view, square, &mut input) {
            defmt::panic!("face crop: {}", e);
        }
        let t_infer = cycles::now();
        let logits = match model.run(&input, arena) {
            Ok(l) => l,
            Err(e) => defmt::panic!("inference: {}", e),
        };
        let t_done = cycles::now();
        let label = logits.argmax();
        let conf = scores::softmax(&logits, out_q)[label as usize];
        led.show(led::colour_of(label));
        frames += 1;
        let frame_us = cycles::micros(last, t_done);
        last = t_done;
        defmt::info!(
            "#{} {} {=u32}% | capture {=u32} ms, preprocess {=u32} us, inference {=u32}.{=u32:02} ms | {=u32}.{=u32} fps",
            frames,
            label.name(),
            (conf * 100.0) as u32,
            cycles::micros(t_capture, t_pre) / 1000,
            cycles::micros(t_pre, t_infer),
            cycles::micros(t_infer, t_done) / 1000,
            cycles::micros(t_infer, t_done) % 1000 / 10,
            1_000_000 / frame_us.max(1),
            10_000_000 / frame_us.max(1) % 10
        );
    }
}
